import { OrphanWatch } from './orphans';

describe('OrphanWatch', () => {
  it('lets a QUEUED job without a queue entry be queued again at once', () => {
    const watch = new OrphanWatch(40_000);
    expect(watch.due({ id: 'q', status: 'QUEUED' }, 0)).toBe(true);
  });

  it('holds a RUNNING one until it has been seen without an entry for the grace, then lets it go', () => {
    const watch = new OrphanWatch(40_000);
    const job = { id: 'r', status: 'RUNNING' };
    expect(watch.due(job, 1_000)).toBe(false);
    expect(watch.due(job, 20_000)).toBe(false);
    expect(watch.due(job, 40_999)).toBe(false);
    expect(watch.due(job, 41_000)).toBe(true);
  });

  it('starts over for a job that had an entry again in between (kept only while seen without one)', () => {
    const watch = new OrphanWatch(40_000);
    const job = { id: 'r', status: 'RUNNING' };
    expect(watch.due(job, 0)).toBe(false);
    watch.keepOnly(new Set(['r']));
    watch.keepOnly(new Set());
    expect(watch.due(job, 50_000)).toBe(false);
    watch.keepOnly(new Set(['r']));
    expect(watch.due(job, 90_000)).toBe(true);
  });
});
