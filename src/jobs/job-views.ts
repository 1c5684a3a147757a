import { BerthError, ErrorCode } from '../common/errors';
import type { JobView } from './dto/job.dto';

/** A job view as published on its channel (dates as JSON strings) made whole again. */
export function revivedJobView(published: JobView): JobView {
  const date = (d: Date | string | null) => (d === null ? null : new Date(d));
  return {
    ...published,
    createdAt: new Date(published.createdAt),
    startedAt: date(published.startedAt),
    finishedAt: date(published.finishedAt),
  };
}

/**
 * What a subscriber to a job is sent for a notice (`published`, or null for the state when
 * the subscription takes hold): the job's row as `read` finds it now, so that a notice that
 * arrives late never brings back an older state. A row gone (its tenant deleted since) leaves
 * the notice's own payload; with no notice to stand for it, and for any other error, the
 * subscription ends with the error.
 */
export function currentJobView(read: () => Promise<JobView>): (published: JobView | null) => Promise<JobView> {
  return (published) =>
    read().catch((e: unknown) => {
      if (published && e instanceof BerthError && e.code === ErrorCode.JOB_NOT_FOUND) return revivedJobView(published);
      throw e;
    });
}
