import { JobKind } from '../generated/prisma/enums';

/** Queue and job names are constants; each job name has exactly one payload type. */
export const SITES_QUEUE = 'berth-sites';

export const JobName = { ApplySite: 'site.apply' } as const;
export type JobName = (typeof JobName)[keyof typeof JobName];

export interface JobPayloads {
  [JobName.ApplySite]: { jobId: string; siteId: string; kind: JobKind; generation: number };
}

export type StepStatus = 'running' | 'succeeded' | 'failed';
export interface StepRecord {
  name: string;
  status: StepStatus;
  startedAt: string;
  finishedAt?: string;
  detail?: string;
  error?: string;
}
