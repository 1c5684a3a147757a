import { stableStringify } from './json';

/**
 * The views of a stream of change notices, each sent once: every notice is turned into the
 * current view (`view`), and a view that looks (`seen`, by default all of it) as the one sent
 * before is dropped. Two notices that land together (a step ending and the next starting, a
 * status and its progress) read the same state, which a subscriber would otherwise get twice;
 * and a subscriber that selected only some fields is not sent a change it cannot see.
 * `seen` answering undefined means "cannot tell": the view is sent. Leaving the result
 * leaves the source (it unsubscribes).
 */
export function distinctViews<T, V>(
  source: AsyncIterableIterator<T>,
  view: (notice: T) => Promise<V>,
  seen: (v: V) => unknown = (v) => v,
): AsyncIterableIterator<V> {
  let last: string | undefined;
  const result: AsyncIterableIterator<V> = {
    [Symbol.asyncIterator]: () => result,
    async next(): Promise<IteratorResult<V>> {
      for (;;) {
        const notice = await source.next();
        if (notice.done) return { value: undefined, done: true };
        let v: V;
        try {
          v = await view(notice.value);
        } catch (e) {
          // The subscriber gets the error, and graphql-ws then leaves without return():
          // the source is left here, or its connection would stay open.
          await source.return?.();
          throw e;
        }
        const shown = seen(v);
        const key = shown === undefined ? undefined : stableStringify(shown);
        if (key !== undefined && key === last) continue;
        last = key;
        return { value: v, done: false };
      }
    },
    async return(): Promise<IteratorResult<V>> {
      await source.return?.();
      return { value: undefined, done: true };
    },
    async throw(e?: unknown): Promise<IteratorResult<V>> {
      await source.return?.();
      throw e;
    },
  };
  return result;
}

/**
 * `source` with `first` ahead of its notices. For a subscription whose notices are read as the
 * current state (`distinctViews`): subscribed first, then `first` read, so the subscriber gets
 * the state as it is when the subscription takes hold, then every change after it, and no
 * change made between its subscribing and its first read is lost.
 */
export function startingWith<T>(first: T, source: AsyncIterableIterator<T>): AsyncIterableIterator<T> {
  let pending = true;
  const result: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => result,
    next: () => {
      if (!pending) return source.next();
      pending = false;
      return Promise.resolve({ value: first, done: false });
    },
    return: async () => (await source.return?.()) ?? { value: undefined, done: true },
    throw: async (e?: unknown) => {
      await source.return?.();
      throw e;
    },
  };
  return result;
}
