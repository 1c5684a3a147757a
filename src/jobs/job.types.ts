import type { EngineCalls } from '../common/engine-calls';
import type { Job } from '../generated/prisma/client';
import { JobKind } from '../generated/prisma/enums';

/** Queue and job names are constants; each job name has exactly one payload type. */
export const SITES_QUEUE = 'berth-sites';

export const JobName = {
  ApplySite: 'site.apply',
  DeleteTenant: 'tenant.delete',
  MoveTenant: 'tenant.move',
  ScheduleBackups: 'backups.schedule',
} as const;
export type JobName = (typeof JobName)[keyof typeof JobName];

export interface JobPayloads {
  [JobName.ApplySite]: { jobId: string; siteId: string; kind: JobKind; generation: number };
  [JobName.DeleteTenant]: { jobId: string; tenantId: string };
  [JobName.MoveTenant]: { jobId: string; tenantId: string };
  /** The repeatable job that starts the backups that are due; it has no row of its own. */
  [JobName.ScheduleBackups]: Record<string, never>;
}

/** A queue message: a job name with its own payload. */
export type QueueMessage = { [N in JobName]: { name: N; data: JobPayloads[N] } }[JobName];

/** The queue message that runs a job row: a whole tenant's jobs have their own, every other kind applies a site. */
export function queueMessage(job: Job): QueueMessage {
  if (job.kind === JobKind.DELETE_TENANT) return { name: JobName.DeleteTenant, data: { jobId: job.id, tenantId: job.tenantId } };
  if (job.kind === JobKind.MOVE_TENANT) return { name: JobName.MoveTenant, data: { jobId: job.id, tenantId: job.tenantId } };
  if (!job.siteId) throw new Error(`job ${job.id} (${job.kind}) has no site`);
  return { name: JobName.ApplySite, data: { jobId: job.id, siteId: job.siteId, kind: job.kind, generation: job.generation } };
}

export type StepStatus = 'running' | 'succeeded' | 'failed';
export interface StepRecord {
  name: string;
  status: StepStatus;
  startedAt: string;
  finishedAt?: string;
  detail?: string;
  error?: string;
  /** Docker Engine API calls the step made, by endpoint (absent when it made none). */
  engineCalls?: EngineCalls;
}
