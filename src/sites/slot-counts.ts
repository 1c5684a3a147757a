import { availableParallelism } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';

/** How long an engine's CPU count is kept; how soon an engine that could not be asked is asked again. */
export const CPUS_KEPT_MS = 10 * 60_000;
export const CPUS_RETRY_MS = 30_000;
export const CPUS_ASK_TIMEOUT_MS = 5_000;

/** Twice the CPUs (at least 2, at most 256): beyond that, more starts at once only slow each. */
export const slotsForCpus = (cpus: number): number => Math.min(256, Math.max(2, 2 * Math.round(cpus)));

/**
 * How many site jobs at once each engine takes (BERTH_ENGINE_SLOTS), per slot scope: the
 * configured number, or twice the CPUs the engine itself reports, so that a Swarm's small node
 * is not given a big one's share, nor a remote engine the share of the machine Berth runs on.
 * An engine that cannot be asked gets twice this machine's cores until it can.
 */
export class SlotCounts {
  private readonly known = new Map<string, { count: number; until: number }>();

  constructor(
    private readonly configured: number | undefined,
    private readonly onUnknown: (scope: string, e: Error) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  async of(scope: string, cpus: () => Promise<number>): Promise<number> {
    if (this.configured) return this.configured;
    const at = this.now();
    const known = this.known.get(scope);
    if (known && known.until > at) return known.count;
    let count: number;
    let kept = CPUS_KEPT_MS;
    try {
      // A job waits on this before its first step: an engine that does not answer is not waited for.
      const n = await Promise.race([
        cpus(),
        delay(CPUS_ASK_TIMEOUT_MS, undefined, { ref: false }).then(() => {
          throw new Error(`no answer within ${CPUS_ASK_TIMEOUT_MS} ms`);
        }),
      ]);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`the engine reports ${n} CPUs`);
      count = slotsForCpus(n);
    } catch (e) {
      this.onUnknown(scope, e as Error);
      count = slotsForCpus(availableParallelism());
      kept = CPUS_RETRY_MS;
    }
    this.known.set(scope, { count, until: at + kept });
    return count;
  }
}
