/**
 * A fleet-wide change (image, PID limit, publish address, ...) changes every site's spec
 * hash at once. Its repairs replace containers, so they roll out a few sites at a time and
 * stop at the first failure; outages (a missing or stopped container) are repaired at once.
 */
export interface RolloutState {
  /** Most rollout repairs in flight at once (BERTH_ROLLOUT_BATCH). */
  batch: number;
  /** Rollout repairs queued or running now. */
  inFlight: number;
  /** A rollout repair of the current configuration failed and its site was not retried since. */
  halted: boolean;
}

export interface RepairCandidate {
  /** Part of a rollout (replaces a running container) rather than the repair of an outage. */
  rollout: boolean;
}

/** Which repairs to enqueue now, in order; the rest of the rollout waits for a later pass. */
export function scheduleRepairs<T extends RepairCandidate>(candidates: T[], state: RolloutState): { now: T[]; waiting: T[] } {
  const slots = state.halted ? 0 : Math.max(0, state.batch - state.inFlight);
  const rollouts = candidates.filter((c) => c.rollout);
  return { now: [...candidates.filter((c) => !c.rollout), ...rollouts.slice(0, slots)], waiting: rollouts.slice(slots) };
}

/** A repair job's params name the configuration it rolls out; other jobs have none. */
export function rolloutOf(params: unknown): string | undefined {
  const value = (params as { rollout?: unknown } | null)?.rollout;
  return typeof value === 'string' ? value : undefined;
}
