/** How long each part of a backup or restore took: an operator's first clue when one is slow. */
export class Laps {
  private readonly laps: [string, number][] = [];
  private last = Date.now();
  /** The time since the previous lap, named (an empty name only starts the next). */
  lap(name: string): void {
    const t = Date.now();
    if (name) this.laps.push([name, t - this.last]);
    this.last = t;
  }
  /** A part timed by its caller (one of several at once). */
  add(name: string, ms: number): void {
    this.laps.push([name, ms]);
  }
  toString(): string {
    return this.laps.map(([n, ms]) => `${n} ${(ms / 1000).toFixed(1)} s`).join(', ');
  }
}

/**
 * Runs the parts at once; when one fails, the others are stopped and waited for (so nothing
 * still writes when the caller cleans up), and the first failure is thrown.
 */
export async function both<T>(signal: AbortSignal, parts: ((signal: AbortSignal) => Promise<T>)[]): Promise<T[]> {
  const stop = new AbortController();
  const s = AbortSignal.any([signal, stop.signal]);
  let first: { reason: unknown } | undefined;
  const settled = await Promise.allSettled(
    parts.map((p) =>
      p(s).catch((e: unknown) => {
        first ??= { reason: e };
        stop.abort(e);
        throw e;
      }),
    ),
  );
  if (first) throw first.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}
