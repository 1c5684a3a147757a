import { RevocationsService } from './revocations.service';
import type { RedisService } from '../redis/redis.service';

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

  it("ends what a key holds open when it is revoked, once, and nothing of another key's or of what was untied", async () => {
    const revocations = new RevocationsService(redis);
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
    const revocations = new RevocationsService(redis);
    const ended: string[] = [];
    revocations.holdOpen('k', () => {
      throw new Error('socket already gone');
    });
    revocations.holdOpen('k', () => ended.push('second'));
    await revocations.announce('k');
    expect(ended).toEqual(['second']);
  });
});
