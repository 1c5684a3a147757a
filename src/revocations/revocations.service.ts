import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { RedisService } from '../redis/redis.service';

/** Where Berth's processes tell each other that a key was revoked. */
const REVOKED_CHANNEL = 'berth:api-keys:revoked';

/**
 * API key revocations, in every process: each process's authentication cache forgets the key,
 * and what the key opened and keeps open past its request (a graphql-ws connection, an event
 * stream, a followed log, which no later authentication would stop) is closed.
 */
@Injectable()
export class RevocationsService implements OnModuleInit {
  private readonly logger = new Logger('Revocations');
  private readonly listeners = new Set<(keyId: string) => void>();
  /** By key id: what ends when that key is revoked. */
  private readonly open = new Map<string, Set<() => void>>();

  constructor(private readonly redis: RedisService) {}

  async onModuleInit(): Promise<void> {
    const feed = await this.redis.subscribe<{ keyId: string }>(REVOKED_CHANNEL);
    void (async () => {
      for await (const { keyId } of feed) this.revoked(keyId);
    })().catch((e: Error) => this.logger.warn(`revocation feed ended: ${e.message}`));
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
    for (const listener of this.listeners) listener(keyId);
    const ends = this.open.get(keyId);
    this.open.delete(keyId);
    for (const end of ends ?? []) {
      try {
        end();
      } catch (e) {
        this.logger.warn(`closing what revoked key ${keyId} held open failed: ${(e as Error).message}`);
      }
    }
  }
}
