/**
 * Which unfinished jobs without a queue entry may be queued again now (JobsService.requeueOrphans).
 *
 * A QUEUED row may: nobody runs it. A RUNNING row may be running still: when Redis lost its
 * data (a restart without persistence, a flush), the job's queue entry and its site's lock went
 * with it, while its worker goes on until it finds its lock gone, at its next renewal or once
 * the lock's time to live has passed, and its step has stopped (up to the stop grace). Queued
 * again sooner, another worker would take the free lock and run the same job beside it. So a
 * RUNNING row is queued again only once this process has seen it without an entry for `graceMs`
 * (the lock's time to live and the stop grace): by then its worker has stopped, or is gone.
 * Not covered: a step that does not stop even then (an engine call that never returns); its
 * attempt ends without it, and the row it puts back to QUEUED is queued again at once.
 */
export class OrphanWatch {
  /** When each RUNNING job was first seen without a queue entry (ms). */
  private readonly since = new Map<string, number>();

  constructor(private readonly graceMs: number) {}

  /** Whether the job, seen now without a queue entry, may be queued again. */
  due(job: { id: string; status: string }, now: number): boolean {
    if (job.status !== 'RUNNING') return true;
    const first = this.since.get(job.id);
    if (first === undefined) this.since.set(job.id, now);
    return first !== undefined && now - first >= this.graceMs;
  }

  /** Forgets every job but those in `orphans` (the ones seen without an entry in this sweep, not yet queued again). */
  keepOnly(orphans: Set<string>): void {
    for (const id of this.since.keys()) if (!orphans.has(id)) this.since.delete(id);
  }
}
