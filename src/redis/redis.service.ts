import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import { setTimeout as delay } from 'node:timers/promises';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { admission, type Admission } from './rate-limit';
import { acquireLock, type Lock } from './lock';

export type { Lock } from './lock';

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
   * A lock held while its holder renews it; it cannot outlive its holder: a holder that dies
   * loses it after ttlMs, and one that cannot renew it is told through `lock.signal` before
   * anyone else can take it (see {@link acquireLock}). Undefined when someone else holds it.
   */
  async tryLock(key: string, ttlMs = 30_000): Promise<Lock | undefined> {
    return acquireLock(this.client, key, ttlMs);
  }

  /** Waits for a lock, polling; throws after timeoutMs, or when `signal` aborts. */
  lock(key: string, timeoutMs: number, ttlMs = 30_000, signal?: AbortSignal): Promise<Lock> {
    return this.poll(() => this.tryLock(key, ttlMs), `lock ${key}`, timeoutMs, signal);
  }

  /**
   * One of `count` interchangeable locks `<prefix>:0` to `<prefix>:<count - 1>` (a counting
   * semaphore with the locks' guarantees), tried from a random one so that waiters do not all
   * contend for the first; undefined when every one is held.
   */
  async trySlot(prefix: string, count: number, ttlMs = 30_000): Promise<Lock | undefined> {
    const first = Math.floor(Math.random() * count);
    for (let i = 0; i < count; i++) {
      const lock = await this.tryLock(`${prefix}:${(first + i) % count}`, ttlMs);
      if (lock) return lock;
    }
    return undefined;
  }

  /** Waits for one of the slots of {@link trySlot}, polling; throws after timeoutMs, or when `signal` aborts. */
  slot(prefix: string, count: number, timeoutMs: number, ttlMs = 30_000, signal?: AbortSignal): Promise<Lock> {
    return this.poll(() => this.trySlot(prefix, count, ttlMs), `a slot of ${prefix}`, timeoutMs, signal);
  }

  private async poll(take: () => Promise<Lock | undefined>, what: string, timeoutMs: number, signal?: AbortSignal): Promise<Lock> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const lock = await take();
      if (lock && signal?.aborted) {
        // Won after the waiter gave up (its step stopped): nobody would release it.
        await lock.release();
        signal.throwIfAborted();
      }
      if (lock) return lock;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await delay(100 + Math.floor(Math.random() * 100), undefined, { signal });
    }
  }

  /** Admits one request of `key` or returns the seconds to wait: see {@link admit}. */
  async rateLimit(key: string, perMinute: number, burst = perMinute): Promise<Admission> {
    return admission(this.client, `berth:rate:${key}`, perMinute, burst);
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
