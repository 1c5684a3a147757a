import { getHeapStatistics } from 'node:v8';
import { GROWTH_BYTES, IDLE_CPU_SHARE, IdleCollector, shouldCollect } from './idle-gc';

const MiB = 2 ** 20;

describe('collecting garbage once a burst of work is over', () => {
  it('collects when the process is quiet and its heap grew well past the last collection', () => {
    expect(shouldCollect({ cpuShare: 0.01, heapBytes: 200 * MiB, floorBytes: 100 * MiB })).toBe(true);
  });

  it('does not while work goes on, however large the heap', () => {
    expect(shouldCollect({ cpuShare: IDLE_CPU_SHARE, heapBytes: 500 * MiB, floorBytes: 100 * MiB })).toBe(false);
    expect(shouldCollect({ cpuShare: 0.8, heapBytes: 500 * MiB, floorBytes: 100 * MiB })).toBe(false);
  });

  it('does not when the heap is about where the last collection left it', () => {
    expect(shouldCollect({ cpuShare: 0, heapBytes: 100 * MiB + GROWTH_BYTES, floorBytes: 100 * MiB })).toBe(false);
  });

  it('collects a real heap after a burst, not during it', async () => {
    const told: string[] = [];
    const c = new IdleCollector(0, (m) => told.push(m));
    const before = getHeapStatistics().total_heap_size;
    let burst: { i: number; s: string }[] | undefined = [];
    for (let i = 0; i < 1_500_000; i++) burst.push({ i, s: `x${i}` });
    const grown = getHeapStatistics().total_heap_size;
    expect(grown).toBeGreaterThan(before + GROWTH_BYTES);
    // During the burst (the CPU since the collector was made): nothing.
    expect(c.check()).toBe(false);
    burst = undefined;
    // Once quiet (about nothing for a while since the last check): one collection, which gives the heap back.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(c.check()).toBe(true);
    expect(c.collections).toBe(1);
    expect(told).toEqual([expect.stringMatching(/^a burst of work is over: one full garbage collection, heap \d+ → \d+ MiB$/)]);
    expect(getHeapStatistics().total_heap_size).toBeLessThan(grown - GROWTH_BYTES);
    // And not again until the heap grows again.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(c.check()).toBe(false);
    expect(burst).toBeUndefined();
  });
});
