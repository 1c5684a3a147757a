import { rolloutOf, scheduleRepairs } from './rollout';

const outage = (id: string) => ({ id, rollout: false });
const change = (id: string) => ({ id, rollout: true });
const ids = (xs: { id: string }[]) => xs.map((x) => x.id);

describe('scheduleRepairs', () => {
  const fleet = [change('a'), change('b'), outage('x'), change('c'), change('d')];

  it('starts at most the batch size of rollout repairs, in order, and holds the rest', () => {
    const { now, waiting } = scheduleRepairs(fleet, { batch: 2, inFlight: 0, halted: false });
    expect(ids(now)).toEqual(['x', 'a', 'b']);
    expect(ids(waiting)).toEqual(['c', 'd']);
  });

  it('counts the rollout repairs still in flight against the batch', () => {
    expect(ids(scheduleRepairs(fleet, { batch: 2, inFlight: 1, halted: false }).now)).toEqual(['x', 'a']);
    expect(ids(scheduleRepairs(fleet, { batch: 2, inFlight: 2, halted: false }).now)).toEqual(['x']);
    expect(ids(scheduleRepairs(fleet, { batch: 2, inFlight: 5, halted: false }).now)).toEqual(['x']);
  });

  it('starts no rollout repair once halted, but still repairs outages at once', () => {
    const { now, waiting } = scheduleRepairs(fleet, { batch: 2, inFlight: 0, halted: true });
    expect(ids(now)).toEqual(['x']);
    expect(ids(waiting)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('repairs every outage whatever the batch', () => {
    const outages = ['1', '2', '3', '4', '5'].map(outage);
    expect(scheduleRepairs(outages, { batch: 1, inFlight: 1, halted: true }).now).toHaveLength(5);
  });

  it('lets a large batch take the whole fleet', () => {
    expect(scheduleRepairs(fleet, { batch: 100, inFlight: 0, halted: false }).waiting).toEqual([]);
  });
});

describe('rolloutOf', () => {
  it('reads the configuration a repair job rolls out, and nothing from other jobs', () => {
    expect(rolloutOf({ rollout: 'abc', reason: 'x' })).toBe('abc');
    expect(rolloutOf({ reason: 'x' })).toBeUndefined();
    expect(rolloutOf({ previous: {} })).toBeUndefined();
    expect(rolloutOf(null)).toBeUndefined();
  });
});
