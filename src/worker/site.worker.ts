import { Inject, Injectable, Logger } from '@nestjs/common';
import { DelayedError, UnrecoverableError, Worker, type Job as BullJob } from 'bullmq';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Job, Prisma } from '../generated/prisma/client';
import { BackupStatus, JobKind, JobStatus, SiteStatus } from '../generated/prisma/enums';
import { RedisService, type Lock } from '../redis/redis.service';
import { releasing } from '../redis/lock';
import { EventsService } from '../events/events.service';
import { RolledBackError, SiteRunner } from '../sites/site-runner.service';
import { SiteStatusWriter } from '../sites/site-status';
import { CancelledError, JobsService } from '../jobs/jobs.service';
import { JobName, SITES_QUEUE, type JobPayloads } from '../jobs/job.types';
import { HUNG_STEP_RELEASE_MS, STOP_GRACE_MS, StepRecorder } from '../jobs/step-recorder';
import { mergeJobParams } from '../jobs/job-params';
import { attemptOutcome } from './attempt-outcome';
import { CONTENT_JOBS, finishesOnceStarted, SupersededError, supersededBy, supersededDetail } from '../jobs/generation';
import { MonitorService } from '../monitor/monitor.service';
import { EdgeService } from '../edge/edge.service';
import { TenantDeletionService } from '../tenants/tenant-deletion.service';
import { TenantMoveService } from '../tenants/tenant-move.service';
import { BackupRunner, cloneOf } from '../backups/backup-runner.service';
import { BackupScheduler } from '../backups/backup-scheduler.service';

type Payload = JobPayloads[typeof JobName.ApplySite];
const handlers: Record<JobName, true> = {
  [JobName.ApplySite]: true,
  [JobName.DeleteTenant]: true,
  [JobName.MoveTenant]: true,
  [JobName.ScheduleBackups]: true,
};
/** A new site's provisioning: tenant network, database server, site volume and container, the two waits, its database, install, edge route, served. */
const STEPS_PER_JOB = 9;

/** Why a restore that kept losing its site's lock ends: the site FAILED, its checkpoint named. */
function lostRestoreMessage(message: string, rounds: number, job: Job): string {
  const checkpoint = (job.params as { checkpointId?: string }).checkpointId;
  return (
    `${message}; the site's lock was lost in ${rounds} rounds of attempts: the restore is given up and the site left FAILED, ` +
    `perhaps half restored${checkpoint ? ` (checkpoint ${checkpoint} holds it as it was before the restore: restore it)` : ''}`
  );
}

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
    private readonly status: SiteStatusWriter,
    private readonly monitor: MonitorService,
    private readonly edge: EdgeService,
    private readonly tenantDeletion: TenantDeletionService,
    private readonly tenantMoves: TenantMoveService,
    private readonly backups: BackupRunner,
    private readonly scheduler: BackupScheduler,
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
    // Not a tenant's move: its sites are half moved, so the sweeper below queues it again and
    // the next attempt takes it up where its params say (forward, or back to its node).
    this.worker.on('failed', (job, e) => {
      if (job && job.name !== JobName.MoveTenant && e.message.includes('stalled'))
        void this.fail(job.data.jobId, e.message).catch(() => undefined);
    });
    this.sweeper = setInterval(
      () => {
        this.jobs.requeueOrphans().catch((e: Error) => this.logger.warn(`requeue: ${e.message}`));
        this.jobs.resumeLost().catch((e: Error) => this.logger.warn(`resume: ${e.message}`));
        this.tenantMoves.clearLeftovers().catch((e: Error) => this.logger.warn(`move leftovers: ${e.message}`));
        this.scheduler
          .ensureRegistered()
          .then((missing) => missing && this.logger.warn('the backup schedule was missing from Redis (flushed?): registered again'))
          .catch((e: Error) => this.logger.warn(`backup schedule: ${e.message}`));
      },
      Math.min(15_000, this.config.BERTH_STALLED_INTERVAL_MS * 2),
    );
    this.sweeper.unref();
    this.scheduler.register().catch((e: Error) => this.logger.error(`backup schedule not registered: ${e.message}`));
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
    if (bull.name === JobName.MoveTenant) return this.tenantMoves.process(bull, token);
    if (bull.name === JobName.ScheduleBackups) return void (await this.scheduler.tick());
    const { jobId, siteId } = bull.data;
    const row = await this.prisma.job.findUnique({ where: { id: jobId } });
    if (!row || row.status === JobStatus.SUCCEEDED || row.status === JobStatus.CANCELLED || row.status === JobStatus.FAILED) return;

    if (await this.backups.waitsForBackup(row)) {
      await bull.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    const lock = await this.redis.tryLock(`berth:lock:site:${siteId}`, this.config.BERTH_LOCK_TTL_MS);
    if (!lock) {
      // Another job of this site is running: come back shortly, without using an attempt.
      await bull.moveToDelayed(Date.now() + 500, token);
      throw new DelayedError();
    }
    // Its tenant is moving to another node (a move queued or running: it holds its sites'
    // locks, or is about to take them): after the move, without using an attempt.
    // (A failed read lets the lock go: held by nobody's job, it would keep the site's jobs waiting.)
    const moving = this.config.BERTH_ENGINE === 'swarm' && (await this.tenantMoves.moving(row.tenantId).catch(releasing(lock)));
    if (moving) {
      await lock.release();
      await bull.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    const steps = this.recorder(bull.data, lock);
    try {
      await this.execute(bull, jobId, steps, lock);
    } finally {
      // Whatever the job did (stopped, deleted, failed, rolled back), the edge follows it.
      this.edge.soon();
      if (steps.stopping) {
        // A step that did not stop when told to keeps the site locked until it has stopped,
        // so the next attempt (or the next job) never runs beside it.
        this.logger.warn(`job ${jobId}: a step is still stopping; site ${siteId} stays locked until it has`);
        steps
          .idle(HUNG_STEP_RELEASE_MS)
          .then((stopped) => {
            if (!stopped)
              this.logger.error(
                `job ${jobId}: a step has not stopped ${HUNG_STEP_RELEASE_MS / 60_000} min after it was told to (an engine call that does not return?); site ${siteId} is let go, so that its jobs are not held for good`,
              );
          })
          .finally(() => lock.release())
          .catch(() => undefined);
      } else {
        await lock.release();
      }
    }
  }

  /**
   * The job's steps: each gets a signal that aborts on its timeout or when the site's lock is
   * lost (then no further step starts). Between steps, the lock is verified against Redis, a
   * cancellation takes effect (no step is left half-applied), and a job that a newer request
   * overtook stops (that request's job applies the site).
   */
  private recorder({ jobId, siteId, generation, kind }: Payload, lock: Lock): StepRecorder {
    return new StepRecorder(
      STEPS_PER_JOB,
      this.config.BERTH_STEP_TIMEOUT_MS,
      async (list, progress) => {
        await this.jobs.publish(
          await this.prisma.job.update({ where: { id: jobId }, data: { steps: list as unknown as Prisma.InputJsonValue, progress } }),
        );
      },
      async () => {
        await lock.verify();
        // A restore or a deletion that has started finishes (or rolls back): stopping it halfway
        // would leave half a site (JobsService.cancel refuses them once started).
        if (!finishesOnceStarted(kind) && (await this.jobs.cancelRequested(jobId))) throw new CancelledError();
        // Backups and restores change no desired state: a newer request waits for them, it does not stop them.
        if (CONTENT_JOBS.has(kind)) return;
        const site = await this.prisma.site.findUnique({ where: { id: siteId }, select: { generation: true } });
        const newer = supersededBy(generation, site?.generation);
        if (newer !== undefined) throw new SupersededError(newer, generation);
      },
      { signal: lock.signal, stopGraceMs: STOP_GRACE_MS },
    );
  }

  private async execute(bull: BullJob<Payload, void, JobName>, jobId: string, steps: StepRecorder, lock: Lock): Promise<void> {
    // Conditional, so that a job cancelled while this worker picked it up stays cancelled.
    const claimed = await this.prisma.job.updateMany({
      where: { id: jobId, status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] } },
      data: { status: JobStatus.RUNNING, attempts: { increment: 1 }, startedAt: new Date(), error: null },
    });
    if (claimed.count === 0) return;
    const started = await this.prisma.job.findUniqueOrThrow({ where: { id: jobId } });
    await this.jobs.publish(started);
    try {
      const fromBackup = CONTENT_JOBS.has(started.kind) || cloneOf(started) !== undefined;
      const status = fromBackup ? await this.backups.run(started, steps) : await this.runner.run(started, steps);
      // A backup leaves the site as it was: its probing goes on as before.
      if (started.siteId && started.kind !== JobKind.BACKUP) await this.monitor.afterJob(started.siteId, status);
      const done = await this.prisma.job.update({
        where: { id: jobId },
        data: { status: JobStatus.SUCCEEDED, progress: 100, finishedAt: new Date() },
      });
      await this.jobs.publish(done);
      if (started.kind === 'PROVISION') {
        await this.events.record({
          tenantId: started.tenantId,
          siteId: started.siteId,
          type: 'site.provisioned',
          message: 'Site provisioned and answering',
          data: { jobId },
        });
      }
      this.logger.log(`job ${jobId} (${started.kind}) succeeded: site ${status}`);
    } catch (e) {
      const message = (e as Error).message;
      if (e instanceof SupersededError) return this.superseded(started, steps, e);
      if (e instanceof RolledBackError && started.siteId) await this.monitor.afterJob(started.siteId, e.status);
      if (e instanceof CancelledError) {
        await this.fail(jobId, 'cancelled', JobStatus.CANCELLED);
        throw new UnrecoverableError('cancelled');
      }
      // With the lock lost, someone else may be applying the site now: the site is left to them.
      const lost = lock.signal.aborted;
      const { final, siteFailed, givenUp, lostRounds } = attemptOutcome({
        kind: started.kind,
        rolledBack: e instanceof RolledBackError,
        lost,
        spent: bull.attemptsMade + 1 >= (bull.opts.attempts ?? 1),
        lostRounds: (started.params as { lostLockRounds?: number }).lostLockRounds ?? 0,
      });
      if (final) await this.fail(jobId, givenUp ? lostRestoreMessage(message, lostRounds, started) : message, JobStatus.FAILED, siteFailed);
      else {
        if (lostRounds > 0) await mergeJobParams(this.prisma, jobId, { lostLockRounds: lostRounds });
        await this.jobs.publish(await this.prisma.job.update({ where: { id: jobId }, data: { status: JobStatus.QUEUED, error: message } }));
      }
      this.logger.warn(`job ${jobId} (${started.kind}) attempt ${bull.attemptsMade + 1} failed: ${message}`);
      throw e instanceof RolledBackError && !lost ? new UnrecoverableError(message) : e;
    }
  }

  /**
   * A job that a newer request overtook ends without writing to the site: SUCCEEDED with a
   * last step saying so (the newer request's job applies the site; no site.provisioned
   * event), or FAILED if it had failed and could not roll back because of that request.
   */
  private async superseded(started: Job, steps: StepRecorder, e: SupersededError): Promise<void> {
    if (e.failure) {
      await this.fail(started.id, e.failure, JobStatus.FAILED, false);
      this.logger.warn(`job ${started.id} (${started.kind}) failed: ${e.failure}`);
      throw new UnrecoverableError(e.failure);
    }
    await steps.record('superseded', supersededDetail(e.siteGeneration, e.jobGeneration));
    // supersededBy lets a cancellation of the newer request run this job again (JobsService.resume).
    const params = { ...(started.params as Prisma.JsonObject), supersededBy: e.siteGeneration };
    await this.jobs.publish(
      await this.prisma.job.update({
        where: { id: started.id },
        data: { status: JobStatus.SUCCEEDED, progress: 100, finishedAt: new Date(), params },
      }),
    );
    this.logger.log(`job ${started.id} (${started.kind}) superseded by generation ${e.siteGeneration}`);
    // The newer request may have been cancelled and undone since this job saw it: then the site
    // is back at this job's generation and no job would apply it (the undo saw this one running).
    // The job has ended either way: should this fail, the sweeper's resumeLost runs it again.
    const siteId = started.siteId;
    if (!siteId) return;
    await this.prisma.site
      .findUnique({ where: { id: siteId }, select: { generation: true } })
      .then((site) => (site?.generation === started.generation ? this.jobs.resumeAfterUndo(siteId, started.generation) : false))
      .catch((e: Error) => this.logger.warn(`job ${started.id} not run again now (${e.message}); the sweeper will`));
  }

  /** The backups a job was taking when it ended for good (failed, cancelled, given up) failed with it; the owner is told. */
  private async backupFailed(jobId: string, message: string): Promise<void> {
    const pending = await this.prisma.backup.findMany({ where: { jobId, status: BackupStatus.PENDING } });
    for (const backup of pending) {
      await this.prisma.backup.update({
        where: { id: backup.id },
        data: { status: BackupStatus.FAILED, error: message, finishedAt: new Date() },
      });
      await this.events.record({
        tenantId: backup.tenantId,
        siteId: backup.siteId,
        type: 'backup.failed',
        message: `${backup.kind === 'CHECKPOINT' ? 'Checkpoint' : 'Backup'} of the site failed: ${message}`,
        data: { backupId: backup.id, jobId },
      });
    }
  }

  /**
   * Ends a job for good; the site is FAILED with the reason unless a rollback kept it running
   * or a newer request owns the site (the write is conditional on the job's generation).
   */
  private async fail(jobId: string, message: string, status: JobStatus = JobStatus.FAILED, siteFailed = true): Promise<void> {
    // The site first: whoever sees the job finished sees the site as the job left it.
    const running = await this.prisma.job.findUniqueOrThrow({ where: { id: jobId }, select: { siteId: true, generation: true } });
    if (siteFailed && running.siteId) {
      const reason = status === JobStatus.CANCELLED ? `job ${jobId} was cancelled` : message;
      await this.status
        .set({ id: running.siteId }, { status: SiteStatus.FAILED, lastError: reason }, running.generation)
        .catch((err: unknown) => {
          if (!(err instanceof SupersededError)) throw err;
        });
    }
    await this.backupFailed(jobId, message);
    const job = await this.prisma.job.update({ where: { id: jobId }, data: { status, error: message, finishedAt: new Date() } });
    await this.jobs.publish(job);
    await this.events.record({
      tenantId: job.tenantId,
      siteId: job.siteId,
      type: status === JobStatus.CANCELLED ? 'job.cancelled' : 'job.failed',
      message: `${job.kind} ${status === JobStatus.CANCELLED ? 'cancelled' : `failed: ${message}`}`,
      data: { jobId },
    });
  }
}
