import { availableParallelism } from 'node:os';
import { CPUS_ASK_TIMEOUT_MS, CPUS_KEPT_MS, CPUS_RETRY_MS, SlotCounts, slotsForCpus } from './slot-counts';

describe('SlotCounts', () => {
  it('twice the CPUs, at least 2 and at most 256', () => {
    expect([0.5, 1, 3, 7.8, 500].map(slotsForCpus)).toEqual([2, 2, 6, 16, 256]);
  });

  it('takes BERTH_ENGINE_SLOTS as it is, without asking the engine', async () => {
    const cpus = jest.fn(async () => 8);
    expect(await new SlotCounts(3).of('', cpus)).toBe(3);
    expect(cpus).not.toHaveBeenCalled();
  });

  it("unset: twice each engine's own CPUs, asked again once CPUS_KEPT_MS has passed", async () => {
    let now = 1_000;
    const counts = new SlotCounts(undefined, undefined, () => now);
    const asked: string[] = [];
    const node = (scope: string, cpus: number) => () => {
      asked.push(scope);
      return Promise.resolve(cpus);
    };
    expect(await counts.of(':node:a', node('a', 2))).toBe(4);
    expect(await counts.of(':node:b', node('b', 16))).toBe(32);
    expect(await counts.of(':node:a', node('a', 2))).toBe(4);
    expect(asked).toEqual(['a', 'b']);
    now += CPUS_KEPT_MS;
    expect(await counts.of(':node:a', node('a', 4))).toBe(8);
    expect(asked).toEqual(['a', 'b', 'a']);
  });

  it("an engine that cannot be asked (or reports nonsense) gets twice this machine's cores, and is asked again soon", async () => {
    let now = 0;
    const unknown: string[] = [];
    const counts = new SlotCounts(
      undefined,
      (scope, e) => unknown.push(`${scope}: ${e.message}`),
      () => now,
    );
    const mine = slotsForCpus(availableParallelism());
    expect(await counts.of(':node:x', () => Promise.reject(new Error('connect ECONNREFUSED')))).toBe(mine);
    expect(await counts.of(':node:y', () => Promise.resolve(NaN))).toBe(mine);
    jest.useFakeTimers({ doNotFake: ['Date'] });
    try {
      const hung = counts.of(':node:z', () => new Promise<number>(() => undefined));
      await jest.advanceTimersByTimeAsync(CPUS_ASK_TIMEOUT_MS);
      expect(await hung).toBe(mine);
    } finally {
      jest.useRealTimers();
    }
    expect(unknown).toEqual([
      ':node:x: connect ECONNREFUSED',
      ':node:y: the engine reports NaN CPUs',
      `:node:z: no answer within ${CPUS_ASK_TIMEOUT_MS} ms`,
    ]);
    // Kept only CPUS_RETRY_MS: then the engine, reachable again, is asked.
    now += CPUS_RETRY_MS - 1;
    expect(await counts.of(':node:x', () => Promise.resolve(5))).toBe(mine);
    now += 1;
    expect(await counts.of(':node:x', () => Promise.resolve(5))).toBe(10);
  });
});
