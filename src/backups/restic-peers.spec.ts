import { ResticPeers } from './restic-peers';
import type { RedisService } from '../redis/redis.service';

jest.mock('@nestjs/common', () => ({ Injectable: () => () => undefined, Inject: () => () => undefined }));

/** The keys of a fake Redis, with SCAN in one page. */
function fakeRedis(keys: Map<string, string>, failing = false) {
  return {
    client: {
      set: async (k: string, v: string) => (keys.set(k, v), 'OK'),
      del: async (k: string) => Number(keys.delete(k)),
      scan: async (_c: string, _m: string, pattern: string) => {
        if (failing) throw new Error('redis down');
        return ['0', [...keys.keys()].filter((k) => k.startsWith(pattern.slice(0, -1)))];
      },
    },
  } as unknown as RedisService;
}

describe('ResticPeers', () => {
  it("sees another process's restic, not its own, and its own mark goes once its last restic ends", async () => {
    const keys = new Map<string, string>();
    const mine = new ResticPeers(fakeRedis(keys));
    const theirs = new ResticPeers(fakeRedis(keys));
    mine.started();
    mine.started();
    await Promise.resolve();
    expect(await mine.othersRunning()).toBe(false);
    expect(await theirs.othersRunning()).toBe(true);
    mine.ended();
    expect(await theirs.othersRunning()).toBe(true);
    mine.ended();
    await Promise.resolve();
    expect(await theirs.othersRunning()).toBe(false);
    mine.onModuleDestroy();
  });

  it('answers that others may run when Redis cannot tell (no lock is cleared then)', async () => {
    await expect(new ResticPeers(fakeRedis(new Map(), true)).othersRunning()).resolves.toBe(true);
  });
});
