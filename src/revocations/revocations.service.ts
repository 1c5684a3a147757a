import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { RedisService } from '../redis/redis.service';

/** Where Berth's processes tell each other that a key was revoked. */
const REVOKED_CHANNEL = 'berth:api-keys:revoked';
/** Revoked keys remembered so that what is being opened for one as it is revoked closes too. */
const RECENT_MS = 10 * 60_000;
const RECENT_MAX = 10_000;

/**
 * API key revocations, in every process: each process's authentication cache forgets the key,
 * and what the key opened and keeps open past its request (a graphql-ws connection, an event
 * stream, a followed log, which no later authentication would stop) is closed.
 */
@Injectable()
export class RevocationsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Revocations');
  private readonly listeners = new Set<(keyId: string) => void>();
  /** By key id: what ends when that key is revoked. */
  private readonly open = new Map<string, Set<() => void>>();
  /** Keys revoked lately, and when: a hold taken for one (its request began before) ends at once. */
  private readonly recent = new Map<string, number>();
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly redis: RedisService,
    private readonly prisma: PrismaService,
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    const feed = await this.redis.subscribe<{ keyId: string }>(REVOKED_CHANNEL);
    void (async () => {
      for await (const { keyId } of feed) this.revoked(keyId);
    })().catch((e: Error) => this.logger.warn(`revocation feed ended: ${e.message}`));
    // What the messages could miss (a publish that failed, a process that was cut off from
    // Redis) is found by asking the database, as often as the authentication cache forgets.
    this.sweeper = setInterval(
      () => void this.sweep().catch((e: Error) => this.logger.warn(`checking held keys failed: ${e.message}`)),
      this.config.BERTH_AUTH_CACHE_MS || 10_000,
    );
    this.sweeper.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweeper);
  }

  /** Ends what keys revoked (or deleted) in the database hold open; returns how many keys. */
  async sweep(): Promise<number> {
    if (this.open.size === 0) return 0;
    const ids = [...this.open.keys()];
    const rows = await this.prisma.apiKey.findMany({ where: { id: { in: ids } }, select: { id: true, revokedAt: true } });
    const live = new Set(rows.filter((r) => !r.revokedAt).map((r) => r.id));
    const gone = ids.filter((id) => !live.has(id));
    for (const id of gone) this.revoked(id);
    return gone.length;
  }

  /** Takes effect here at once, then (through Redis) in every other process. */
  async announce(keyId: string): Promise<void> {
    this.revoked(keyId);
    await this.redis
      .publish(REVOKED_CHANNEL, { keyId })
      .catch((e: Error) => this.logger.warn(`revocation of ${keyId} not broadcast: ${e.message}`));
  }

  /** Called with each revoked key's id (more than once for the same key is harmless). */
  onRevoked(listener: (keyId: string) => void): void {
    this.listeners.add(listener);
  }

  /**
   * Ties something that outlives its request to the key that opened it: `end` runs once that
   * key is revoked. Returns what unties it, to call when it ends by itself.
   */
  holdOpen(keyId: string, end: () => void): () => void {
    if (this.recent.has(keyId)) {
      // Revoked while its request was on the way here.
      queueMicrotask(() => this.end(keyId, end));
      return () => undefined;
    }
    let ends = this.open.get(keyId);
    if (!ends) this.open.set(keyId, (ends = new Set()));
    ends.add(end);
    return () => {
      const now = this.open.get(keyId);
      if (now?.delete(end) && now.size === 0) this.open.delete(keyId);
    };
  }

  /** How many things are held open now (for tests and metrics). */
  get held(): number {
    let n = 0;
    for (const ends of this.open.values()) n += ends.size;
    return n;
  }

  private revoked(keyId: string): void {
    const now = Date.now();
    this.recent.delete(keyId);
    this.recent.set(keyId, now);
    // Oldest first (insertion order): those past RECENT_MS, and any above the bound, go.
    for (const [id, at] of this.recent) {
      if (now - at < RECENT_MS && this.recent.size <= RECENT_MAX) break;
      this.recent.delete(id);
    }
    for (const listener of this.listeners) listener(keyId);
    const ends = this.open.get(keyId);
    this.open.delete(keyId);
    for (const end of ends ?? []) this.end(keyId, end);
  }

  private end(keyId: string, end: () => void): void {
    try {
      end();
    } catch (e) {
      this.logger.warn(`closing what revoked key ${keyId} held open failed: ${(e as Error).message}`);
    }
  }
}
