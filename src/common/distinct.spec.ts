import { distinctViews, startingWith } from './distinct';
import { stableStringify } from './json';

/** A source of notices that records whether it was left. */
function source<T>(items: T[]) {
  const state = { left: false };
  let i = 0;
  const it: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => it,
    next: async () => (i < items.length ? { value: items[i++], done: false } : { value: undefined, done: true }),
    return: async () => {
      state.left = true;
      return { value: undefined, done: true };
    },
  };
  return { it, state };
}

async function all<V>(it: AsyncIterableIterator<V>): Promise<V[]> {
  const out: V[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe('distinctViews', () => {
  it('sends each view once when notices land together, and every change in order', async () => {
    // Two notices read the same state (the second write landed before the first was read).
    const states = [{ p: 10 }, { p: 10 }, { p: 40 }, { p: 40 }, { p: 40 }, { p: 10 }];
    const { it } = source(states);
    expect(await all(distinctViews(it, async (n) => n))).toEqual([{ p: 10 }, { p: 40 }, { p: 10 }]);
  });

  it('compares dates by their instant, so a change of a date alone is sent', async () => {
    const at = (s: string) => ({ status: 'RUNNING', finishedAt: new Date(s) });
    const { it } = source([at('2026-01-01T00:00:00Z'), at('2026-01-01T00:00:00Z'), at('2026-01-01T00:00:01Z')]);
    expect((await all(distinctViews(it, async (n) => n))).map((v) => v.finishedAt.toISOString())).toEqual([
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T00:00:01.000Z',
    ]);
    expect(stableStringify(new Date('2026-01-01T00:00:00Z'))).not.toBe(stableStringify(new Date('2026-01-01T00:00:01Z')));
  });

  it('leaves the source when the subscriber leaves', async () => {
    const { it, state } = source([1, 2, 3]);
    const views = distinctViews(it, async (n) => n);
    expect(await views.next()).toEqual({ value: 1, done: false });
    expect(state.left).toBe(false);
    await views.return!();
    expect(state.left).toBe(true);
  });

  it('startingWith: the current state first, then every notice; leaving it leaves the source', async () => {
    const { it: notices } = source([{ p: 10 }, { p: 40 }]);
    const states = [{ p: 10 }, { p: 40 }, { p: 70 }];
    let reads = 0;
    // Each notice (and the start) is read as the state current at the time of reading.
    const views = distinctViews(startingWith({ p: -1 }, notices), async () => states[reads++]);
    expect(await views.next()).toEqual({ value: { p: 10 }, done: false });
    expect(await views.next()).toEqual({ value: { p: 40 }, done: false });
    expect(await views.next()).toEqual({ value: { p: 70 }, done: false });
    expect(await views.next()).toEqual({ value: undefined, done: true });

    const left = source([1]);
    const early = startingWith(0, left.it);
    expect(await early.next()).toEqual({ value: 0, done: false });
    await early.return!();
    expect(left.state.left).toBe(true);
  });

  it('leaves the source when reading a view fails, and the subscriber gets the error', async () => {
    const { it, state } = source([1, 2]);
    const views = distinctViews(it, async (n) => {
      if (n === 2) throw new Error('database went away');
      return n;
    });
    expect(await views.next()).toEqual({ value: 1, done: false });
    expect(state.left).toBe(false);
    await expect(views.next()).rejects.toThrow('database went away');
    expect(state.left).toBe(true);
  });
});
