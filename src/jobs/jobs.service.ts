import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { MetricsService } from '../metrics/metrics.service';
import { PrismaService } from '../database/prisma.service';
import { Prisma, type Job, type Site } from '../generated/prisma/client';
import { BackupStatus, DesiredState, JobKind, JobStatus } from '../generated/prisma/enums';
import { EventsService } from '../events/events.service';
import { RedisService } from '../redis/redis.service';
import { BerthError, ErrorCode } from '../common/errors';
import { assertCanWrite, canSeeTenant, type Principal } from '../common/principal';
import { isUuid } from '../common/ids';

import { JobName, queueMessage, SITES_QUEUE, type JobPayloads, type StepRecord } from './job.types';
import { CONTENT_JOBS, finishesOnceStarted, guarded, notCancellable, resumeAfterUndo, undoOf } from './generation';
import { type JobView } from './dto/job.dto';
import { OrphanWatch } from './orphans';
import { STOP_GRACE_MS } from './step-recorder';

/** How far back the sweep for lost resumptions looks for cancellations ({@link JobsService.resumeLost}). */
export const RESUME_LOOKBACK_MS = 7 * 24 * 3600_000;

export function toJobView(j: Job): JobView {
  const { id, tenantId, siteId, kind, status, progress, attempts, error, createdAt, startedAt, finishedAt } = j;
  return {
    id,
    tenantId,
    siteId,
    kind,
    status,
    steps: j.steps as unknown as StepRecord[],
    progress,
    attempts,
    error,
    createdAt,
    startedAt,
    finishedAt,
  };
}

export const jobChannel = (id: string) => `berth:job:${id}`;
const cancelKey = (id: string) => `berth:cancel:${id}`;

/** Thrown between steps of a job whose cancellation was asked for. */
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
  }
}

/** Puts jobs on the queue and reads them back; the worker side is SiteWorker. */
@Injectable()
export class JobsService implements OnModuleDestroy {
  private readonly logger = new Logger('Jobs');
  readonly queue: Queue<JobPayloads[JobName], void, JobName>;
  private readonly orphans: OrphanWatch;

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly events: EventsService,
    private readonly metrics: MetricsService,
  ) {
    this.orphans = new OrphanWatch(config.BERTH_LOCK_TTL_MS + STOP_GRACE_MS);
    this.queue = new Queue(SITES_QUEUE, {
      connection: redis.connect({ maxRetriesPerRequest: 3 }),
      defaultJobOptions: {
        attempts: config.BERTH_JOB_ATTEMPTS,
        backoff: { type: 'exponential', delay: config.BERTH_JOB_BACKOFF_MS },
        removeOnComplete: { age: 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    });
    metrics.watchQueue(SITES_QUEUE, this.queue);
  }

  /**
   * Enqueues a job row; the BullMQ id is the row id, so enqueueing twice is harmless. The
   * row is already committed, so a failure here (Redis away) is not the caller's: the
   * worker's sweeper enqueues the row later, and the request still succeeds.
   */
  async enqueue(job: Job): Promise<void> {
    try {
      const { name, data } = queueMessage(job);
      await this.queue.add(name, data, { jobId: job.id });
    } catch (e) {
      this.logger.warn(`job ${job.id} not enqueued now (${(e as Error).message}); the sweeper will enqueue it`);
    }
  }

  /**
   * Enqueues a job that brings the site to its desired state again (REPAIR, or DELETE for an
   * unfinished deletion) with a `site.repair` event saying why, unless a job of the site is
   * queued or running already (it converges the site anyway). Returns the job, if it made one.
   * `seenSince` is when the caller began reading the engine and the site: a job of the site that
   * finished since then may have changed both under it (the reason is stale), so none is made;
   * the next look at the site decides again.
   */
  async repair(site: Site, reason: string, rollout?: string, seenSince?: Date): Promise<Job | undefined> {
    const job = await this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM "Site" WHERE id = ${site.id}::uuid FOR UPDATE`;
      const busy = await tx.job.count({
        where: {
          siteId: site.id,
          OR: [{ status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] } }, ...(seenSince ? [{ finishedAt: { gte: seenSince } }] : [])],
        },
      });
      if (busy > 0) return undefined;
      const fresh = await tx.site.findUniqueOrThrow({ where: { id: site.id }, select: { generation: true, desiredState: true } });
      const created = await tx.job.create({
        data: {
          tenantId: site.tenantId,
          siteId: site.id,
          kind: fresh.desiredState === DesiredState.ABSENT ? JobKind.DELETE : JobKind.REPAIR,
          generation: fresh.generation,
          params: rollout ? { rollout, reason } : { reason },
        },
      });
      await this.events.record(
        {
          tenantId: site.tenantId,
          siteId: site.id,
          type: 'site.repair',
          message: `Repairing site ${site.name}: ${reason}`,
          data: { jobId: created.id, reason, ...(rollout ? { rollout } : {}) },
        },
        tx,
      );
      return created;
    });
    if (job) await this.enqueue(job);
    return job;
  }

  /**
   * Unfinished job rows with no live queue entry are enqueued again: the enqueue after the
   * commit was lost (a crash between the two, Redis down or restarted without its data), or
   * BullMQ gave the job up. So no job stays QUEUED or RUNNING forever.
   */
  async requeueOrphans(olderThanMs = 10_000): Promise<number> {
    const stale = await this.prisma.job.findMany({
      where: { status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] }, createdAt: { lt: new Date(Date.now() - olderThanMs) } },
      // The same first 500 each sweep, so that a RUNNING one's wait (OrphanWatch) is not restarted.
      orderBy: { createdAt: 'asc' },
      take: 500,
    });
    let n = 0;
    const waiting = new Set<string>();
    for (const job of stale) {
      const existing = await this.queue.getJob(job.id);
      const state = existing ? await existing.getState() : 'missing';
      if (state !== 'missing' && state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
      // A RUNNING one may still be running (Redis lost its data): not beside its worker.
      if (!this.orphans.due(job, Date.now())) {
        waiting.add(job.id);
        continue;
      }
      if (existing) await existing.remove().catch(() => undefined);
      await this.enqueue(job);
      n += 1;
    }
    this.orphans.keepOnly(waiting);
    if (n) this.logger.warn(`re-enqueued ${n} job(s) that had no queue entry`);
    if (waiting.size)
      this.logger.warn(`${waiting.size} RUNNING job(s) have no queue entry: queued again once their worker must have stopped`);
    return n;
  }

  async get(actor: Principal, id: string): Promise<JobView> {
    const job = isUuid(id) ? await this.prisma.job.findUnique({ where: { id } }) : null;
    if (!job || !canSeeTenant(actor, job.tenantId)) throw new BerthError(ErrorCode.JOB_NOT_FOUND, `Job ${id} was not found`);
    return toJobView(job);
  }

  /**
   * A queued job ends CANCELLED at once and is taken off the queue (a worker that picked it
   * up meanwhile finds it CANCELLED and leaves it); a running one stops at its next step
   * boundary (the worker checks between steps).
   */
  async cancel(actor: Principal, id: string): Promise<JobView> {
    assertCanWrite(actor);
    const job = isUuid(id) ? await this.prisma.job.findUnique({ where: { id } }) : null;
    if (!job || !canSeeTenant(actor, job.tenantId)) throw new BerthError(ErrorCode.JOB_NOT_FOUND, `Job ${id} was not found`);
    const finished = (status: JobStatus) => new BerthError(ErrorCode.JOB_FINISHED, `Job ${id} is already ${status.toLowerCase()}`);
    if (job.status !== JobStatus.QUEUED && job.status !== JobStatus.RUNNING) throw finished(job.status);
    const refused = notCancellable(job);
    if (refused) throw new BerthError(ErrorCode.JOB_NOT_CANCELLABLE, refused);
    // A restore or deletion is cancelled only before any attempt has begun (the condition
    // below); the worker does not stop a running one, so it needs no mark to look for.
    const once = finishesOnceStarted(job.kind);
    if (!once) await this.redis.client.set(cancelKey(id), '1', 'EX', 24 * 3600);
    // The job's end, its undo, its backup's end and their events commit together: a crash
    // between them would leave the cancelled request's desired state on the site (for the
    // reconciler to apply), or a backup PENDING for ever.
    const base = { tenantId: job.tenantId, siteId: job.siteId, data: { jobId: id }, actorKeyId: actor.keyId };
    const { cancelled, newer } = await this.prisma.$transaction(async (tx) => {
      const ended = await tx.job.updateMany({
        where: { id, status: JobStatus.QUEUED, ...(once ? { attempts: 0 } : {}) },
        data: { status: JobStatus.CANCELLED, finishedAt: new Date(), error: 'cancelled' },
      });
      if (ended.count === 0) return { cancelled: false, newer: undefined };
      // A backup that was to be taken never will be.
      await tx.backup.updateMany({
        where: { jobId: id, status: BackupStatus.PENDING },
        data: { status: BackupStatus.FAILED, error: 'cancelled before it ran', finishedAt: new Date() },
      });
      await this.events.record({ ...base, type: 'job.cancelled', message: `${job.kind} cancelled before it ran` }, tx);
      const newer = await this.undo(tx, job);
      if (newer !== undefined)
        await this.events.record(
          {
            ...base,
            type: 'job.undo.skipped',
            data: { jobId: id, generation: job.generation, siteGeneration: newer },
            message: `${job.kind} was cancelled but not undone: a newer request (generation ${newer}) came after it and stays`,
          },
          tx,
        );
      return { cancelled: true, newer };
    });
    if (cancelled) {
      await (await this.queue.getJob(id).catch(() => undefined))?.remove().catch(() => undefined);
      // Subscribers (and the metrics) learn of the end at once, as of any other.
      const ended = await this.prisma.job.findUnique({ where: { id } });
      if (ended) await this.publish(ended);
      // A provisioning's undo keeps its generation: no job before it to run again. (Should
      // this fail, the worker's sweeper runs the overtaken job again: resumeLost.)
      if (newer === undefined && job.siteId && undoOf(job) && job.kind !== JobKind.PROVISION)
        await this.resumeAfterUndo(job.siteId, job.generation - 1, id);
    } else if (once) {
      // Between the read above and the transaction, a worker took it up, or it ended.
      const now = await this.prisma.job.findUniqueOrThrow({ where: { id } });
      if (now.status !== JobStatus.QUEUED && now.status !== JobStatus.RUNNING) throw finished(now.status);
      throw new BerthError(ErrorCode.JOB_NOT_CANCELLABLE, notCancellable({ ...now, status: JobStatus.RUNNING }) ?? 'the job has started');
    } else {
      // Ended between the read above and the transaction: nothing is left to stop.
      const now = await this.prisma.job.findUniqueOrThrow({ where: { id } });
      if (now.status !== JobStatus.QUEUED && now.status !== JobStatus.RUNNING) {
        await this.redis.client.del(cancelKey(id)).catch(() => undefined);
        throw finished(now.status);
      }
      await this.events.record({
        tenantId: job.tenantId,
        siteId: job.siteId,
        type: 'job.cancel.requested',
        message: `cancellation of ${job.kind} requested`,
        data: { jobId: id },
        actorKeyId: actor.keyId,
      });
    }
    return toJobView(await this.prisma.job.findUniqueOrThrow({ where: { id } }));
  }

  /**
   * Undoes a job cancelled before it ran ({@link undoOf}), only if no newer request came after
   * it; returns the newer generation when one did (and nothing was changed).
   */
  private async undo(tx: Prisma.TransactionClient, job: Job): Promise<number | undefined> {
    if (!job.siteId) return undefined;
    const write = undoOf(job);
    if (!write) return undefined;
    const done = await tx.site.updateMany(guarded(job.siteId, write));
    if (done.count === 1) return undefined;
    const site = await tx.site.findUnique({ where: { id: job.siteId }, select: { generation: true } });
    return site?.generation ?? write.generation;
  }

  /**
   * Runs again the job of `generation` if it stopped as superseded ({@link resumeAfterUndo}),
   * the site having been given that generation back by an undo. Both sides call it after their
   * own write: the undo once it has committed, and the job once it has ended as superseded, so
   * that whichever comes second sees the other's write (a job that saw the newer request just
   * before the undo would otherwise end unseen by it, and its request never be applied). The
   * claim on the stopped job's params makes it run again once, whoever calls.
   */
  async resumeAfterUndo(siteId: string, generation: number, cancelledJobId?: string): Promise<boolean> {
    const jobs = await this.prisma.job.findMany({
      where: { siteId, OR: [{ status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] } }, { generation }] },
      orderBy: { createdAt: 'desc' },
      take: 20,
    });
    const resumption = resumeAfterUndo(generation, jobs);
    if (!resumption) return false;
    const { from, data } = resumption;
    const job = await this.prisma.$transaction(async (tx) => {
      const claimed = await tx.job.updateMany({
        where: { id: from.id, status: JobStatus.SUCCEEDED, params: { path: ['supersededBy'], equals: from.supersededBy } },
        data: { params: from.params },
      });
      if (claimed.count === 0) return undefined;
      const created = await tx.job.create({ data });
      await tx.job.update({
        where: { id: from.id },
        data: { params: { ...(from.params as Prisma.JsonObject), resumedBy: created.id } },
      });
      return created;
    });
    if (!job) return false;
    await this.events.record({
      tenantId: job.tenantId,
      siteId: job.siteId,
      type: 'job.resumed',
      message: `${job.kind} runs again: the request that had superseded it was cancelled`,
      data: { jobId: job.id, resumedJobId: from.id, ...(cancelledJobId ? { cancelledJobId } : {}) },
    });
    await this.enqueue(job);
    return true;
  }

  /**
   * Runs again the jobs whose resumption was lost: a side wrote its half (the cancel its undo,
   * or the overtaken job its end as superseded) and its process died, or the database failed,
   * before it called {@link resumeAfterUndo}. Every such site has a job cancelled and undone
   * (the site is still at the generation before it) and, at that generation, a job that ended
   * as superseded. Cancellations are rare, so they are what is looked for, through the jobs'
   * status and creation index, over `withinMs`; resumeAfterUndo checks the rest and claims.
   * Returns how many jobs run again. The worker's sweeper calls it.
   */
  async resumeLost(withinMs = RESUME_LOOKBACK_MS): Promise<number> {
    const since = new Date(Date.now() - withinMs);
    const contentKinds = Prisma.join([...CONTENT_JOBS]);
    const rows = await this.prisma.$queryRaw<{ id: string; siteId: string; generation: number }[]>`
      SELECT DISTINCT ON (j."siteId") j.id, j."siteId", s.generation
      FROM "Job" j JOIN "Site" s ON s.id = j."siteId"
      WHERE j.status = 'CANCELLED' AND j."createdAt" > ${since} AND s.generation = j.generation - 1
        AND EXISTS (
          SELECT 1 FROM "Job" p
          WHERE p."siteId" = s.id AND p.generation = s.generation AND p.status = 'SUCCEEDED'
            AND p.params->>'supersededBy' IS NOT NULL AND p.kind::text NOT IN (${contentKinds})
            -- the newest job applying that generation, as resumeAfterUndo takes it: once a
            -- repair (or anything else) has applied it since, the site matches no more
            AND NOT EXISTS (
              SELECT 1 FROM "Job" n
              WHERE n."siteId" = s.id AND n.generation = s.generation AND n."createdAt" > p."createdAt"
                AND n.kind::text NOT IN (${contentKinds})
            )
        )
      ORDER BY j."siteId", j."createdAt" DESC
      LIMIT 100`;
    let n = 0;
    for (const r of rows) {
      try {
        if (await this.resumeAfterUndo(r.siteId, r.generation, r.id)) n += 1;
      } catch (e) {
        this.logger.warn(`resuming site ${r.siteId}'s job failed: ${(e as Error).message}`);
      }
    }
    if (n) this.logger.warn(`ran again ${n} job(s) whose resumption after a cancellation had been lost`);
    return n;
  }

  async cancelRequested(id: string): Promise<boolean> {
    return (await this.redis.client.exists(cancelKey(id))) === 1;
  }

  async publish(job: Job): Promise<void> {
    this.metrics.jobEnded(job);
    await this.redis.publish(jobChannel(job.id), toJobView(job)).catch(() => undefined);
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close();
  }
}
