import { acquireLock, LockLostError, releasing, type LockClient } from './lock';

/** Redis's SET NX PX and the lock's two scripts, in memory, with real expiry. */
class FakeRedis implements LockClient {
  readonly keys = new Map<string, { value: string; expiresAt: number }>();
  failing = false;

  get(key: string): string | undefined {
    const e = this.keys.get(key);
    if (e && e.expiresAt <= Date.now()) this.keys.delete(key);
    return this.keys.get(key)?.value;
  }

  async set(key: string, value: string, _px: 'PX', ttlMs: number, _nx: 'NX'): Promise<'OK' | null> {
    if (this.failing) throw new Error('connection refused');
    if (this.get(key) !== undefined) return null;
    this.keys.set(key, { value, expiresAt: Date.now() + ttlMs });
    return 'OK';
  }

  async eval(script: string, _n: number, ...args: (string | number)[]): Promise<unknown> {
    if (this.failing) throw new Error('connection refused');
    const [key, token, ttl] = args.map(String);
    if (this.get(key) !== token) return 0;
    if (script.includes('pexpire')) this.keys.set(key, { value: token, expiresAt: Date.now() + Number(ttl) });
    else this.keys.delete(key);
    return 1;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const aborted = (signal: AbortSignal) =>
  new Promise<number>((r) => (signal.aborted ? r(Date.now()) : signal.addEventListener('abort', () => r(Date.now()))));

describe('acquireLock', () => {
  it('is held past its TTL while renewals succeed, and refused to a second holder', async () => {
    const redis = new FakeRedis();
    const lock = (await acquireLock(redis, 'k', 300))!;
    await sleep(700);
    expect(lock.signal.aborted).toBe(false);
    await expect(lock.verify()).resolves.toBeUndefined();
    expect(await acquireLock(redis, 'k', 300)).toBeUndefined();
    await lock.release();
    expect(lock.signal.aborted).toBe(true);
    expect(redis.get('k')).toBeUndefined();
  });

  it('reports its loss when another holder has the key: the signal aborts and verify() throws', async () => {
    const redis = new FakeRedis();
    const lock = (await acquireLock(redis, 'k', 300))!;
    redis.keys.set('k', { value: 'someone-else', expiresAt: Date.now() + 10_000 });
    await aborted(lock.signal);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    await expect(lock.verify()).rejects.toBeInstanceOf(LockLostError);
    // Releasing a lost lock leaves the new holder's key alone.
    await lock.release();
    expect(redis.get('k')).toBe('someone-else');
  });

  it('gives itself up before Redis could let anyone else take it when it cannot renew', async () => {
    const redis = new FakeRedis();
    const start = Date.now();
    const lock = (await acquireLock(redis, 'k', 500))!;
    redis.failing = true;
    // Redis out of reach is no proof of loss yet: verify() passes while the lease lasts.
    await expect(lock.verify()).resolves.toBeUndefined();
    const at = await aborted(lock.signal);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    expect((lock.signal.reason as Error).message).toMatch(/not renewed within 500 ms/);
    // Lost locally before the key could expire in Redis, so no second holder overlaps.
    expect(at - start).toBeLessThan(500);
    redis.failing = false;
    expect(redis.get('k')).toBeDefined();
    await expect(lock.verify()).rejects.toBeInstanceOf(LockLostError);
  });

  it('is lost after its TTL when its holder stops renewing (a dead holder)', async () => {
    const redis = new FakeRedis();
    const lock = (await acquireLock(redis, 'k', 200))!;
    redis.failing = true; // the holder can no longer reach Redis: as if it had died
    await aborted(lock.signal);
    redis.failing = false;
    await sleep(250);
    const next = await acquireLock(redis, 'k', 200);
    expect(next).toBeDefined();
    await next!.release();
  });
});

describe('releasing', () => {
  it('lets every lock go, even when one release fails, and throws the error again', async () => {
    const redis = new FakeRedis();
    const a = (await acquireLock(redis, 'a', 10_000))!;
    const b = (await acquireLock(redis, 'b', 10_000))!;
    const broken = { ...b, release: () => Promise.reject(new Error('redis down')) };
    const cause = new Error('the database is down');
    await expect(Promise.reject(cause).catch(releasing(broken, a))).rejects.toBe(cause);
    expect(redis.get('a')).toBeUndefined();
    // Control: a lock not handed to it stays held.
    expect(redis.get('b')).toBeDefined();
    await b.release();
  });
});
