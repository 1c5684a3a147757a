import type { PrismaClient } from '../generated/prisma/client';

/**
 * Merges `more` into a job's params in one statement (`params || more`): a key another writer
 * set meanwhile is kept, as a read, merge and write would not. `db` is the client or a
 * transaction's. Returns whether the job was there.
 */
export async function mergeJobParams(db: Pick<PrismaClient, '$executeRaw'>, jobId: string, more: object): Promise<boolean> {
  return (await db.$executeRaw`UPDATE "Job" SET params = params || ${JSON.stringify(more)}::jsonb WHERE id = ${jobId}::uuid`) === 1;
}
