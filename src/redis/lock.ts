import { randomUUID } from 'node:crypto';

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** The two Redis commands a lock needs (ioredis's client has them). */
export interface LockClient {
  set(key: string, value: string, px: 'PX', ttlMs: number, nx: 'NX'): Promise<'OK' | null>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** The lock is gone: another holder has it, or it could not be renewed within its TTL. */
export class LockLostError extends Error {
  constructor(
    readonly key: string,
    why: string,
  ) {
    super(`lost lock ${key}: ${why}`);
  }
}

export interface Lock {
  /**
   * Aborted (with a {@link LockLostError}) as soon as the lock is no longer known to be held:
   * a renewal found another holder, or no renewal succeeded before the TTL could have run
   * out. Work done under the lock stops on it; also aborted when the lock is released.
   */
  readonly signal: AbortSignal;
  /** Renews the lock now; throws a {@link LockLostError} if it is no longer held. */
  verify(): Promise<void>;
  release(): Promise<void>;
}

/**
 * For a `.catch` between taking locks and the `try` that releases them: lets them go and
 * throws again. A lock left held by nobody's job stays held for as long as the process lives
 * (it is renewed), and keeps every later job of its site waiting.
 */
export function releasing(...locks: Lock[]): (e: unknown) => Promise<never> {
  return async (e: unknown) => {
    await Promise.all(locks.map((l) => l.release().catch(() => undefined)));
    throw e;
  };
}

/**
 * Takes `key` for `ttlMs`, renewed every ttlMs/3 while held. The holder considers it lost
 * a margin before Redis could expire it (counted from when the last successful renewal was
 * sent), so a holder cut off from Redis stops before anyone else can take the lock; a holder
 * that dies loses it after ttlMs. Returns undefined when someone else holds it.
 */
export async function acquireLock(client: LockClient, key: string, ttlMs: number): Promise<Lock | undefined> {
  const token = randomUUID();
  const margin = Math.min(1000, Math.floor(ttlMs / 5));
  let sent = Date.now();
  if ((await client.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return undefined;
  const controller = new AbortController();
  let expiry: NodeJS.Timeout | undefined;
  const lose = (why: string) => {
    if (controller.signal.aborted) return;
    clearInterval(renewal);
    clearTimeout(expiry);
    controller.abort(new LockLostError(key, why));
  };
  const held = (since: number) => {
    clearTimeout(expiry);
    expiry = setTimeout(() => lose(`not renewed within ${ttlMs} ms`), Math.max(0, since + ttlMs - margin - Date.now()));
    expiry.unref();
  };
  const renew = async (): Promise<void> => {
    if (controller.signal.aborted) throw controller.signal.reason;
    const at = Date.now();
    const extended = await client.eval(EXTEND, 1, key, token, String(ttlMs));
    if (Number(extended) !== 1) {
      lose('another holder has it, or it expired');
      throw controller.signal.reason;
    }
    if (!controller.signal.aborted) {
      sent = Math.max(sent, at);
      held(sent);
    }
  };
  held(sent);
  // A failed renewal is retried at the next tick; the expiry timer ends the lock if none succeeds in time.
  const renewal = setInterval(() => void renew().catch(() => undefined), Math.max(100, Math.floor(ttlMs / 3)));
  renewal.unref();
  return {
    signal: controller.signal,
    // Redis out of reach is no proof of loss: the lock stays held until the expiry timer says otherwise.
    verify: () =>
      renew().catch((e: unknown) => {
        if (e instanceof LockLostError || controller.signal.aborted) throw controller.signal.reason ?? e;
      }),
    release: async () => {
      lose('released');
      await client.eval(RELEASE, 1, key, token).catch(() => undefined);
    },
  };
}
