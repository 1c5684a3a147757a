import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { RedisService } from '../redis/redis.service';

const PREFIX = 'berth:restic:running:';
/** How long a process's mark outlives its last renewal: a process that died stops counting then. */
const MARK_TTL_MS = 30_000;

/**
 * Which Berth processes run restic right now, through Redis. restic 0.14's `unlock` takes a
 * lock for stale when it was made on this hostname by a PID this process cannot see: so is
 * every live lock of a Berth in another container on the same host (the compose file's
 * `network_mode: host` gives them all the host's hostname, each its own PID namespace).
 * Removing one would let a backup run beside a prune, which deletes what the new snapshot
 * needs. So stale locks are cleared only while no other Berth process runs restic; a process
 * that died stops counting MARK_TTL_MS after its last renewal.
 */
@Injectable()
export class ResticPeers implements OnModuleDestroy {
  private readonly key = `${PREFIX}${randomUUID()}`;
  private running = 0;
  private beat?: NodeJS.Timeout;

  constructor(private readonly redis: RedisService) {}

  /** Around each restic child of this process: before it starts. */
  started(): void {
    if (this.running++ > 0) return;
    this.mark();
    this.beat = setInterval(() => this.mark(), MARK_TTL_MS / 3);
    this.beat.unref();
  }

  /** ...and once it has exited. */
  ended(): void {
    if (--this.running > 0) return;
    clearInterval(this.beat);
    this.redis.client.del(this.key).catch(() => undefined);
  }

  /** Whether another Berth process runs restic now (true when Redis cannot tell). */
  async othersRunning(): Promise<boolean> {
    try {
      for (let cursor = '0'; ;) {
        const [next, keys] = await this.redis.client.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 100);
        if (keys.some((k) => k !== this.key)) return true;
        if (next === '0') return false;
        cursor = next;
      }
    } catch {
      return true;
    }
  }

  onModuleDestroy(): void {
    clearInterval(this.beat);
  }

  private mark(): void {
    this.redis.client.set(this.key, String(process.pid), 'PX', MARK_TTL_MS).catch(() => undefined);
  }
}
