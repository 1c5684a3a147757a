import type { Job, PrismaClient } from '../generated/prisma/client';
import { JobKind } from '../generated/prisma/enums';

/**
 * Merges `more` into a job's params in one statement (`params || more`): a key another writer
 * set meanwhile is kept, as a read, merge and write would not. `db` is the client or a
 * transaction's. Returns whether the job was there.
 */
export async function mergeJobParams(db: Pick<PrismaClient, '$executeRaw'>, jobId: string, more: object): Promise<boolean> {
  return (await db.$executeRaw`UPDATE "Job" SET params = params || ${JSON.stringify(more)}::jsonb WHERE id = ${jobId}::uuid`) === 1;
}

/** What a clone's PROVISION job carries: the site and backup it copies. */
export interface CloneOrigin {
  cloneOf: { siteId: string; backupId: string };
}

/** A provisioning job that makes its site from a backup rather than a fresh WordPress. */
export const cloneOf = (job: Pick<Job, 'kind' | 'params'>): CloneOrigin['cloneOf'] | undefined =>
  job.kind === JobKind.PROVISION ? (job.params as Partial<CloneOrigin> | null)?.cloneOf : undefined;

/**
 * Whether the site is a clone whose copy from its backup has not completed (its latest
 * provisioning is a clone's, and WordPress was never installed or put back): no job but its
 * own copy, or a deletion, may bring it up, or a blank WordPress would be installed in its place.
 */
export async function unfinishedClone(
  db: { job: Pick<PrismaClient['job'], 'findFirst'> },
  site: { id: string; installedAt: Date | null },
): Promise<boolean> {
  if (site.installedAt) return false;
  const provision = await db.job.findFirst({
    where: { siteId: site.id, kind: JobKind.PROVISION },
    orderBy: { createdAt: 'desc' },
    select: { kind: true, params: true },
  });
  return !!provision && cloneOf(provision) !== undefined;
}
