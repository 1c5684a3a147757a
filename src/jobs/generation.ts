import type { Job, Prisma } from '../generated/prisma/client';
import { DesiredState, JobKind, JobStatus, SiteStatus } from '../generated/prisma/enums';

/**
 * Generations: every request that changes a site's desired state or settings bumps the
 * site's `generation` by one (under the row lock) and its job carries the new number; the
 * reconciler's repairs carry the current one. A job owns its site only while the site's
 * generation is still the job's: every write of a job or of its undo/rollback is a
 * compare-and-set on it, so nothing stale ever writes over a newer request.
 */

/**
 * A newer request overtook the job. Normally the job just stops and ends SUCCEEDED with a
 * "superseded" step (the newer job applies the site); `failure` is set when the job had
 * failed and could not roll back because of the newer request: it then ends FAILED.
 */
export class SupersededError extends Error {
  constructor(
    readonly siteGeneration: number,
    readonly jobGeneration: number,
    readonly failure?: string,
  ) {
    super(failure ?? supersededDetail(siteGeneration, jobGeneration));
  }
}

export const supersededDetail = (siteGeneration: number, jobGeneration: number) =>
  `superseded by generation ${siteGeneration} (this job applied generation ${jobGeneration}); the newer request's job applies the site`;

/** Jobs that read or put back a site's content: they never change its desired state, so no request supersedes them. */
export const CONTENT_JOBS: ReadonlySet<JobKind> = new Set([JobKind.BACKUP, JobKind.RESTORE]);

/**
 * Jobs that cannot be undone once an attempt has begun: a restore (its checkpoint is put back
 * by the job itself, or the job runs again) and a site's deletion (its containers, files and
 * database may be gone already: an undo would bring back a RUNNING site with none of them).
 */
const FINISH_ONCE_STARTED: ReadonlySet<JobKind> = new Set([JobKind.RESTORE, JobKind.DELETE]);

/** Whether a job's cancellation must wait for it never to have started ({@link notCancellable}). */
export const finishesOnceStarted = (kind: JobKind): boolean => FINISH_ONCE_STARTED.has(kind);

/** Why `job` cannot be cancelled, or undefined when it can (while it is QUEUED or RUNNING). */
export function notCancellable(job: Pick<Job, 'kind' | 'status' | 'attempts'>): string | undefined {
  if (job.kind === JobKind.DELETE_TENANT) return 'A tenant deletion cannot be cancelled; it finishes or fails, and can be asked for again';
  if (job.kind === JobKind.MOVE_TENANT)
    return "A tenant's move cannot be cancelled: it finishes, or puts the tenant back on the node it left";
  // Running, or waiting for another attempt after one that may have changed the site.
  const started = job.status === JobStatus.RUNNING || job.attempts > 0;
  if (!started || !finishesOnceStarted(job.kind)) return undefined;
  return job.kind === JobKind.RESTORE
    ? 'A running restore cannot be cancelled: it finishes, or rolls back to the checkpoint it took'
    : "A site's deletion that has started cannot be cancelled: its containers and files may be gone already; it finishes, or fails and can be asked for again";
}

/** The site's generation if it is newer than the job's, i.e. the job no longer owns the site. */
export function supersededBy(jobGeneration: number, siteGeneration: number | undefined): number | undefined {
  return siteGeneration !== undefined && siteGeneration > jobGeneration ? siteGeneration : undefined;
}

/** A compare-and-set write: `data` applies only while the site's generation is `generation`. */
export interface GuardedWrite {
  generation: number;
  data: Prisma.SiteUpdateManyMutationInput;
}

type JobParams = {
  previousDesired?: DesiredState;
  previousStatus?: SiteStatus;
  previous?: Prisma.SiteUpdateManyMutationInput;
};

/**
 * What undoing a job cancelled before it ran writes, valid only while the site's generation
 * is still the job's (no newer request came after it). The previous desired state and
 * settings come back with the generation before the job's (requests bump it by exactly one),
 * so the job before this one owns the site again. A provisioning that never ran leaves a
 * FAILED site to delete or start.
 */
export function undoOf(job: Pick<Job, 'id' | 'kind' | 'generation' | 'params'>): GuardedWrite | undefined {
  const params = (job.params ?? {}) as JobParams;
  if (job.kind === JobKind.PROVISION) {
    return {
      generation: job.generation,
      data: { status: SiteStatus.FAILED, lastError: `provisioning job ${job.id} was cancelled before it ran` },
    };
  }
  // The reconciler's jobs (repairs, a deletion finished) carry the current generation and
  // record no request: there is nothing to undo.
  if (!params.previousDesired && !params.previous) return undefined;
  return {
    generation: job.generation,
    data: {
      ...(params.previous ?? {}),
      ...(params.previousDesired ? { desiredState: params.previousDesired } : {}),
      ...(job.kind === JobKind.DELETE && params.previousStatus ? { status: params.previousStatus } : {}),
      generation: job.generation - 1,
    },
  };
}

/** An update's rollback: its previous settings, only while the site's generation is still the update's. */
export function rollbackOf(job: Pick<Job, 'kind' | 'generation' | 'params'>): GuardedWrite | undefined {
  const previous = (job.params as JobParams | null)?.previous;
  if (job.kind !== JobKind.UPDATE || !previous) return undefined;
  return { generation: job.generation, data: previous };
}

/** The Prisma arguments of a guarded write to one site. */
export const guarded = (siteId: string, w: GuardedWrite): Prisma.SiteUpdateManyArgs => ({
  where: { id: siteId, generation: w.generation },
  data: w.data,
});

type JobFacts = Pick<Job, 'id' | 'tenantId' | 'siteId' | 'kind' | 'status' | 'generation' | 'params'>;

/** The job to run again after an undo ({@link resumeAfterUndo}): `from` is the job it repeats. */
export interface Resumption {
  from: { id: string; supersededBy: number; params: Prisma.InputJsonValue };
  data: Prisma.JobUncheckedCreateInput;
}

/**
 * After an undo gave the site back `generation` (the one before the undone job's): the job of
 * that generation may have stopped meanwhile as superseded (it saw the newer request before it
 * was cancelled). Then a job of the same kind and params must run that generation again; this
 * returns it (or undefined when that job finished on its own or a job is still to run).
 * `jobs` are the site's unfinished jobs and those of the restored generation, newest first.
 */
export function resumeAfterUndo(generation: number, jobs: JobFacts[]): Resumption | undefined {
  // Backups and restores carry the generation they ran at and apply no request: they neither
  // stand for the restored generation's job nor stop it from running again.
  const applying = jobs.filter((j) => !CONTENT_JOBS.has(j.kind));
  if (applying.some((j) => j.status === JobStatus.QUEUED || j.status === JobStatus.RUNNING)) return undefined;
  const last = applying.find((j) => j.generation === generation);
  const { supersededBy, ...params } = (last?.params ?? {}) as { supersededBy?: number };
  if (!last || last.status !== JobStatus.SUCCEEDED || supersededBy === undefined) return undefined;
  return {
    from: { id: last.id, supersededBy, params: params as Prisma.InputJsonValue },
    data: { tenantId: last.tenantId, siteId: last.siteId, kind: last.kind, generation, params: params as Prisma.InputJsonValue },
  };
}
