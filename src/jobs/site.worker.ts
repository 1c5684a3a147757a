import { Inject, Injectable, Logger } from '@nestjs/common';
import { DelayedError, UnrecoverableError, Worker, type Job as BullJob } from 'bullmq';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Prisma } from '../generated/prisma/client';
import { JobStatus, SiteStatus } from '../generated/prisma/enums';
import { RedisService } from '../redis/redis.service';
import { EventsService } from '../events/events.service';
import { RolledBackError, SiteRunner } from '../sites/site-runner.service';
import { CancelledError, JobsService } from './jobs.service';
import { JobName, SITES_QUEUE, type JobPayloads } from './job.types';
import { StepRecorder } from './step-recorder';
import { TenantDeletionService } from '../tenants/tenant-deletion.service';

type Payload = JobPayloads[typeof JobName.ApplySite];
const handlers: Record<JobName, true> = { [JobName.ApplySite]: true, [JobName.DeleteTenant]: true };
const STEPS_PER_JOB = 6;

/** Runs site jobs: one at a time per site, in parallel across sites. */
@Injectable()
export class SiteWorker {
  private readonly logger = new Logger('SiteWorker');
  private worker?: Worker<Payload, void, JobName>;
  private sweeper?: NodeJS.Timeout;

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly jobs: JobsService,
    private readonly events: EventsService,
    private readonly runner: SiteRunner,
    private readonly tenantDeletion: TenantDeletionService,
  ) {}

  start(): void {
    this.worker = new Worker<Payload, void, JobName>(SITES_QUEUE, (job, token) => this.process(job, token), {
      connection: this.redis.connect({ maxRetriesPerRequest: null }),
      concurrency: this.config.BERTH_WORKER_CONCURRENCY,
      lockDuration: this.config.BERTH_LOCK_TTL_MS,
      stalledInterval: this.config.BERTH_STALLED_INTERVAL_MS,
      maxStalledCount: 5,
    });
    this.worker.on('error', (e) => this.logger.error(`worker: ${e.message}`));
    // A job BullMQ gives up on without our handler seeing it (stalled too often) still ends.
    this.worker.on('failed', (job, e) => {
      if (job && e.message.includes('stalled')) void this.fail(job.data.jobId, e.message).catch(() => undefined);
    });
    this.sweeper = setInterval(() => {
      this.jobs.requeueOrphans().catch((e: Error) => this.logger.warn(`requeue: ${e.message}`));
    }, Math.min(15_000, this.config.BERTH_STALLED_INTERVAL_MS * 2));
    this.sweeper.unref();
    this.logger.log(`processing ${SITES_QUEUE} with concurrency ${this.config.BERTH_WORKER_CONCURRENCY}`);
  }

  /** Lets running jobs finish (BullMQ waits for them), then stops taking new ones. */
  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    await this.worker?.close();
  }

  private async process(bull: BullJob<Payload, void, JobName>, token?: string): Promise<void> {
    if (!handlers[bull.name]) throw new Error(`no handler for job ${bull.name}`);
    if (bull.name === JobName.DeleteTenant) return this.tenantDeletion.process(bull, token);
    const { jobId, siteId } = bull.data;
    const row = await this.prisma.job.findUnique({ where: { id: jobId } });
    if (!row || row.status === JobStatus.SUCCEEDED || row.status === JobStatus.CANCELLED || row.status === JobStatus.FAILED) return;

    const lock = await this.redis.tryLock(`berth:lock:site:${siteId}`, this.config.BERTH_LOCK_TTL_MS);
    if (!lock) {
      // Another job of this site is running: come back shortly, without using an attempt.
      await bull.moveToDelayed(Date.now() + 500, token);
      throw new DelayedError();
    }
    try {
      await this.execute(bull, jobId);
    } finally {
      await lock.release();
    }
  }

  private async execute(bull: BullJob<Payload, void, JobName>, jobId: string): Promise<void> {
    const started = await this.prisma.job.update({
      where: { id: jobId },
      data: { status: JobStatus.RUNNING, attempts: { increment: 1 }, startedAt: new Date(), error: null },
    });
    await this.jobs.publish(started);
    const steps = new StepRecorder(
      STEPS_PER_JOB,
      this.config.BERTH_STEP_TIMEOUT_MS,
      async (list, progress) => {
        await this.jobs.publish(await this.prisma.job.update({ where: { id: jobId }, data: { steps: list as unknown as Prisma.InputJsonValue, progress } }));
      },
      // Between steps is where a cancellation takes effect: no step is left half-applied.
      async () => {
        if (await this.jobs.cancelRequested(jobId)) throw new CancelledError();
      },
    );
    try {
      const status = await this.runner.run(started, steps);
      const done = await this.prisma.job.update({ where: { id: jobId }, data: { status: JobStatus.SUCCEEDED, progress: 100, finishedAt: new Date() } });
      await this.jobs.publish(done);
      if (started.kind === 'PROVISION') {
        await this.events.record({ tenantId: started.tenantId, siteId: started.siteId, type: 'site.provisioned', message: 'Site provisioned and answering', data: { jobId } });
      }
      this.logger.log(`job ${jobId} (${started.kind}) succeeded: site ${status}`);
    } catch (e) {
      const message = (e as Error).message;
      if (e instanceof CancelledError) {
        await this.fail(jobId, 'cancelled', JobStatus.CANCELLED);
        throw new UnrecoverableError('cancelled');
      }
      const final = e instanceof RolledBackError || bull.attemptsMade + 1 >= (bull.opts.attempts ?? 1);
      if (final) await this.fail(jobId, message, JobStatus.FAILED, !(e instanceof RolledBackError));
      else await this.jobs.publish(await this.prisma.job.update({ where: { id: jobId }, data: { status: JobStatus.QUEUED, error: message } }));
      this.logger.warn(`job ${jobId} (${started.kind}) attempt ${bull.attemptsMade + 1} failed: ${message}`);
      throw e instanceof RolledBackError ? new UnrecoverableError(message) : e;
    }
  }

  /** Ends a job for good; the site is FAILED with the reason unless a rollback kept it running. */
  private async fail(jobId: string, message: string, status: JobStatus = JobStatus.FAILED, siteFailed = true): Promise<void> {
    const job = await this.prisma.job.update({ where: { id: jobId }, data: { status, error: message, finishedAt: new Date() } });
    await this.jobs.publish(job);
    if (siteFailed && job.siteId) {
      const reason = status === JobStatus.CANCELLED ? `job ${jobId} was cancelled` : message;
      await this.runner.setStatus({ id: job.siteId }, { status: SiteStatus.FAILED, lastError: reason });
    }
    await this.events.record({
      tenantId: job.tenantId, siteId: job.siteId,
      type: status === JobStatus.CANCELLED ? 'job.cancelled' : 'job.failed',
      message: `${job.kind} ${status === JobStatus.CANCELLED ? 'cancelled' : `failed: ${message}`}`,
      data: { jobId },
    });
  }
}
