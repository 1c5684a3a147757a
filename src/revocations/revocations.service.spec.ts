import { RevocationsService } from './revocations.service';
import type { RedisService } from '../redis/redis.service';
import type { PrismaService } from '../database/prisma.service';
import type { BerthConfig } from '../config/config';

jest.mock('@nestjs/common', () => ({
  Injectable: () => () => undefined,
  Inject: () => () => undefined,
  Logger: class {
    warn(): void {}
  },
}));

describe('RevocationsService', () => {
  const published: unknown[] = [];
  const redis = { publish: (_c: string, m: unknown) => (published.push(m), Promise.resolve()) } as unknown as RedisService;
  /** The database's keys: id → revoked or not (absent: deleted). */
  const keys = new Map<string, boolean>();
  const prisma = {
    apiKey: {
      findMany: ({ where }: { where: { id: { in: string[] } } }) =>
        Promise.resolve(where.id.in.filter((id) => keys.has(id)).map((id) => ({ id, revokedAt: keys.get(id) ? new Date() : null }))),
    },
  } as unknown as PrismaService;
  const config = { BERTH_AUTH_CACHE_MS: 10_000 } as BerthConfig;
  const service = () => new RevocationsService(redis, prisma, config);

  it("ends what a key holds open when it is revoked, once, and nothing of another key's or of what was untied", async () => {
    const revocations = service();
    const ended: string[] = [];
    const forgotten: string[] = [];
    revocations.onRevoked((k) => forgotten.push(k));
    revocations.holdOpen('k1', () => ended.push('k1 socket'));
    revocations.holdOpen('k1', () => ended.push('k1 stream'));
    const untie = revocations.holdOpen('k1', () => ended.push('k1 closed by its client'));
    revocations.holdOpen('k2', () => ended.push('k2 socket'));
    untie();
    expect(revocations.held).toBe(3);

    await revocations.announce('k1');
    expect(ended).toEqual(['k1 socket', 'k1 stream']);
    expect(forgotten).toEqual(['k1']);
    expect(published).toEqual([{ keyId: 'k1' }]);
    // The message comes back from Redis too: nothing is ended twice.
    await revocations.announce('k1');
    expect(ended).toEqual(['k1 socket', 'k1 stream']);
    expect(revocations.held).toBe(1);
  });

  it('goes on to the next when closing one fails', async () => {
    const revocations = service();
    const ended: string[] = [];
    revocations.holdOpen('k', () => {
      throw new Error('socket already gone');
    });
    revocations.holdOpen('k', () => ended.push('second'));
    await revocations.announce('k');
    expect(ended).toEqual(['second']);
  });

  it('ends at once what is held for a key revoked while its request was on the way', async () => {
    const revocations = service();
    await revocations.announce('late');
    const ended: string[] = [];
    revocations.holdOpen('late', () => ended.push('socket'));
    await Promise.resolve();
    expect(ended).toEqual(['socket']);
    expect(revocations.held).toBe(0);
  });

  it('finds in the database the keys revoked (or deleted) without a message, and ends what they hold', async () => {
    const revocations = service();
    keys.set('live', false).set('revoked', true);
    const ended: string[] = [];
    for (const k of ['live', 'revoked', 'deleted']) revocations.holdOpen(k, () => ended.push(k));
    await expect(revocations.sweep()).resolves.toBe(2);
    expect(ended.sort()).toEqual(['deleted', 'revoked']);
    // Control: the live key's hold stays until its key is revoked.
    expect(revocations.held).toBe(1);
    keys.set('live', true);
    await revocations.sweep();
    expect(ended).toContain('live');
  });
});
