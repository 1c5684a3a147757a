import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Job } from '../generated/prisma/client';
import { JobStatus } from '../generated/prisma/enums';
import { RedisService } from '../redis/redis.service';
import { BerthError, ErrorCode } from '../common/errors';
import { canSeeTenant, type Principal } from '../auth/principal';
import { isUuid } from '../tenants/tenants.service';
import type { JobView } from '../sites/dto/site.dto';
import { JobName, SITES_QUEUE, type JobPayloads, type StepRecord } from './job.types';

export function toJobView(j: Job): JobView {
  const { id, tenantId, siteId, kind, status, progress, attempts, error, createdAt, startedAt, finishedAt } = j;
  return { id, tenantId, siteId, kind, status, steps: j.steps as unknown as StepRecord[], progress, attempts, error, createdAt, startedAt, finishedAt };
}

export const jobChannel = (id: string) => `berth:job:${id}`;

/** Puts jobs on the queue and reads them back; the worker side is SiteWorker. */
@Injectable()
export class JobsService implements OnModuleDestroy {
  private readonly logger = new Logger('Jobs');
  readonly queue: Queue<JobPayloads[typeof JobName.ApplySite], void, JobName>;

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
  ) {
    this.queue = new Queue(SITES_QUEUE, {
      connection: redis.connect({ maxRetriesPerRequest: 3 }),
      defaultJobOptions: {
        attempts: config.BERTH_JOB_ATTEMPTS,
        backoff: { type: 'exponential', delay: config.BERTH_JOB_BACKOFF_MS },
        removeOnComplete: { age: 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    });
  }

  /** Enqueues a job row; the BullMQ id is the row id, so enqueueing twice is harmless. */
  async enqueue(job: Job): Promise<void> {
    await this.queue.add(JobName.ApplySite, { jobId: job.id, siteId: job.siteId, kind: job.kind, generation: job.generation }, { jobId: job.id });
  }

  /**
   * Jobs whose row was committed but whose enqueue was lost (a crash between the two, or
   * Redis down) are enqueued again, so no job stays QUEUED forever.
   */
  async requeueOrphans(olderThanMs = 10_000): Promise<number> {
    const stale = await this.prisma.job.findMany({
      where: { status: JobStatus.QUEUED, createdAt: { lt: new Date(Date.now() - olderThanMs) } },
      take: 500,
    });
    let n = 0;
    for (const job of stale) {
      const existing = await this.queue.getJob(job.id);
      if (existing) continue;
      await this.enqueue(job);
      n += 1;
    }
    if (n) this.logger.warn(`re-enqueued ${n} job(s) that had no queue entry`);
    return n;
  }

  async get(actor: Principal, id: string): Promise<JobView> {
    const job = isUuid(id) ? await this.prisma.job.findUnique({ where: { id } }) : null;
    if (!job || !canSeeTenant(actor, job.tenantId)) throw new BerthError(ErrorCode.JOB_NOT_FOUND, `Job ${id} was not found`);
    return toJobView(job);
  }

  async publish(job: Job): Promise<void> {
    await this.redis.publish(jobChannel(job.id), toJobView(job)).catch(() => undefined);
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close();
  }
}
