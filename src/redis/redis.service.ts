import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { admit } from './rate-limit';

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

export interface Lock {
  release(): Promise<void>;
}

/** Redis for Berth's own needs: locks across processes and live-update fan-out. */
@Injectable()
export class RedisService implements OnModuleDestroy {
  readonly client: Redis;
  private readonly subscribers = new Set<Redis>();

  constructor(@Inject(BERTH_CONFIG) private readonly config: BerthConfig) {
    this.client = this.connect();
  }

  /** A new connection; BullMQ needs its own with maxRetriesPerRequest null. */
  connect(extra: RedisOptions = {}): Redis {
    return new Redis(this.config.REDIS_URL, { lazyConnect: false, enableOfflineQueue: true, ...extra });
  }

  /**
   * A lock held while `ttlMs` is renewed by its holder; a holder that dies loses it
   * after ttlMs. Returns undefined when someone else holds it.
   */
  async tryLock(key: string, ttlMs = 30_000): Promise<Lock | undefined> {
    const token = randomUUID();
    const ok = await this.client.set(key, token, 'PX', ttlMs, 'NX');
    if (ok !== 'OK') return undefined;
    const timer = setInterval(() => {
      this.client.eval(EXTEND, 1, key, token, String(ttlMs)).catch(() => undefined);
    }, ttlMs / 3);
    timer.unref();
    return {
      release: async () => {
        clearInterval(timer);
        await this.client.eval(RELEASE, 1, key, token).catch(() => undefined);
      },
    };
  }

  /** Waits for a lock, polling; throws after timeoutMs. */
  async lock(key: string, timeoutMs: number, ttlMs = 30_000): Promise<Lock> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lock = await this.tryLock(key, ttlMs);
      if (lock) return lock;
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${key}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Admits one request of `key` or returns the seconds to wait: see {@link admit}. */
  async rateLimit(key: string, perMinute: number, burst = perMinute): Promise<number | undefined> {
    return admit(this.client, `berth:rate:${key}`, perMinute, burst);
  }

  async publish(channel: string, message: unknown): Promise<void> {
    await this.client.publish(channel, JSON.stringify(message));
  }

  /**
   * Messages published on channel, as an async iterator that unsubscribes when left.
   * Resolves once the subscription is in place, so nothing published after is missed.
   */
  async subscribe<T>(channel: string): Promise<AsyncIterableIterator<T>> {
    const sub = this.connect();
    this.subscribers.add(sub);
    const queue: T[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    sub.on('message', (_c: string, raw: string) => {
      queue.push(JSON.parse(raw) as T);
      wake?.();
    });
    await sub.subscribe(channel);
    const close = async () => {
      done = true;
      wake?.();
      this.subscribers.delete(sub);
      sub.disconnect();
    };
    const iterator: AsyncIterableIterator<T> = {
      [Symbol.asyncIterator]: () => iterator,
      next: async () => {
        while (!done && queue.length === 0) await new Promise<void>((r) => (wake = r));
        if (queue.length > 0) return { value: queue.shift() as T, done: false };
        return { value: undefined, done: true };
      },
      return: async () => {
        await close();
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }

  async onModuleDestroy(): Promise<void> {
    for (const s of this.subscribers) s.disconnect();
    await this.client.quit().catch(() => undefined);
  }
}
