import { Inject, Injectable, Logger } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { Prisma, type Job } from '../generated/prisma/client';
import { BackupKind, BackupStatus, DesiredState, JobKind, JobStatus, SiteStatus } from '../generated/prisma/enums';
import { EventsService } from '../events/events.service';
import { MetricsService } from '../metrics/metrics.service';
import { JobsService } from '../jobs/jobs.service';
import { JobName } from '../jobs/job.types';
import { RedisService } from '../redis/redis.service';
import { BackupsService } from './backups.service';
import { ResticService } from './restic.service';
import { nextBackupAt } from './retention';

/** Sites looked at per run: the rest are due at the next one. */
const BATCH = 500;
const PRUNE_EVERY_S = 24 * 3600;
const PRUNE_RETRY_S = 3600;

/**
 * Starts the scheduled backups that are due. One BullMQ repeatable job (a job scheduler) runs
 * this every BERTH_BACKUP_SCHEDULER_MS, in whichever worker takes it, instead of one
 * repeatable job per site: thousands of sites are one indexed query, and a site's schedule
 * is two columns that every API and worker reads the same way. Each site's next run is
 * claimed with a compare-and-set, so two schedulers never start the same backup twice.
 */
@Injectable()
export class BackupScheduler {
  private readonly logger = new Logger('BackupScheduler');

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly jobs: JobsService,
    private readonly backups: BackupsService,
    private readonly restic: ResticService,
    private readonly redis: RedisService,
    private readonly events: EventsService,
    private readonly metrics: MetricsService,
  ) {}

  /** Registers the repeatable job (idempotent: every worker does it at start). */
  async register(): Promise<void> {
    await this.jobs.queue.upsertJobScheduler(
      JobName.ScheduleBackups,
      { every: this.config.BERTH_BACKUP_SCHEDULER_MS },
      { name: JobName.ScheduleBackups, data: {}, opts: { attempts: 1, removeOnComplete: true, removeOnFail: 100 } },
    );
  }

  /**
   * Registers the repeatable job again if Redis no longer has it (flushed, or restarted without
   * its data): without it no scheduled backup would run, and nothing would say so. The
   * worker's sweeper calls it; an existing schedule is left as it is (upserting it each time
   * would move its next run). True when it was missing.
   */
  async ensureRegistered(): Promise<boolean> {
    if (await this.jobs.queue.getJobScheduler(JobName.ScheduleBackups)) return false;
    await this.register();
    return true;
  }

  /** Starts every backup that is due; returns how many. Also prunes the repository once a day. */
  async tick(now = new Date()): Promise<number> {
    const due = await this.prisma.site.findMany({
      where: {
        backupIntervalHours: { gt: 0 },
        status: { in: [SiteStatus.RUNNING, SiteStatus.STOPPED] },
        desiredState: { not: DesiredState.ABSENT },
        OR: [{ nextBackupAt: null }, { nextBackupAt: { lte: now } }],
      },
      orderBy: { nextBackupAt: { sort: 'asc', nulls: 'first' } },
      take: BATCH,
    });
    // Sites not on the schedule yet (new ones, or every site after an upgrade): one statement
    // puts them all at their own offset, not a transaction each.
    const unplaced = due.filter((site) => !site.nextBackupAt);
    if (unplaced.length) {
      const rows = unplaced.map(
        (site) =>
          Prisma.sql`(${site.id}::uuid, ${nextBackupAt(site.id, site.backupIntervalHours, now, null).toISOString()}::timestamptz AT TIME ZONE 'UTC')`,
      );
      await this.prisma.$executeRaw`UPDATE "Site" s SET "nextBackupAt" = v.at FROM (VALUES ${Prisma.join(rows)}) AS v(id, at)
        WHERE s.id = v.id AND s."nextBackupAt" IS NULL`;
    }
    const started: Job[] = [];
    for (const site of due) {
      if (!site.nextBackupAt) continue;
      const next = nextBackupAt(site.id, site.backupIntervalHours, now, site.nextBackupAt);
      const job = await this.prisma.$transaction(async (tx) => {
        const claimed = await tx.site.updateMany({ where: { id: site.id, nextBackupAt: site.nextBackupAt }, data: { nextBackupAt: next } });
        // Another scheduler took it.
        if (claimed.count === 0) return undefined;
        // Backups slower than the interval do not pile up: one waiting is enough.
        const pending = await tx.job.count({ where: { siteId: site.id, kind: JobKind.BACKUP, status: JobStatus.QUEUED } });
        if (pending > 0) return undefined;
        return (await this.backups.request(tx, site, BackupKind.SCHEDULED)).job;
      });
      if (job) {
        await this.jobs.enqueue(job);
        started.push(job);
      }
    }
    if (started.length) this.logger.log(`started ${started.length} scheduled backup(s)`);
    await this.expireDeleted(now).catch((e: Error) =>
      this.logger.warn(`forgetting expired backups failed (tried again at the next run): ${e.message}`),
    );
    await this.pruneDaily();
    return started.length;
  }

  /**
   * Forgets the backups of sites deleted more than BERTH_BACKUP_KEEP_DELETED_DAYS ago (one
   * restic run for a batch); their rows stay, DELETED, and the tenant is told by an event.
   */
  async expireDeleted(now = new Date()): Promise<number> {
    // Runs of the scheduler can overlap (every worker takes them): one forgets at a time, so
    // a batch is forgotten, and its tenant told, once.
    const lock = await this.redis.tryLock('berth:backup:expiring', 120_000);
    if (!lock) return 0;
    try {
      return await this.expireBatch(now);
    } finally {
      await lock.release();
    }
  }

  private async expireBatch(now: Date): Promise<number> {
    const before = new Date(now.getTime() - this.config.BERTH_BACKUP_KEEP_DELETED_DAYS * 86_400_000);
    const expired = await this.prisma.backup.findMany({
      where: { status: BackupStatus.SUCCEEDED, site: { status: SiteStatus.DELETED, deletedAt: { lte: before } } },
      select: { id: true, snapshotId: true, tenantId: true, siteId: true },
      orderBy: { createdAt: 'asc' },
      take: BATCH,
    });
    if (!expired.length) return 0;
    await this.restic.forget(expired.flatMap((b) => (b.snapshotId ? [b.snapshotId] : [])));
    // Only the rows this run turned DELETED are told of (a row changed meanwhile is not).
    const turned = await this.prisma.$queryRaw<{ id: string }[]>`UPDATE "Backup" SET status = 'DELETED'
      WHERE id IN (${Prisma.join(expired.map((b) => Prisma.sql`${b.id}::uuid`))}) AND status = 'SUCCEEDED' RETURNING id`;
    const mine = new Set(turned.map((r) => r.id));
    const bySite = new Map<string, typeof expired>();
    for (const b of expired.filter((x) => mine.has(x.id))) bySite.set(b.siteId, [...(bySite.get(b.siteId) ?? []), b]);
    for (const [siteId, backups] of bySite)
      await this.events.record({
        tenantId: backups[0].tenantId,
        siteId,
        type: 'backup.expired',
        message: `${backups.length} backup(s) of a site deleted over ${this.config.BERTH_BACKUP_KEEP_DELETED_DAYS} day(s) ago forgotten`,
        data: { backupIds: backups.map((b) => b.id) },
      });
    this.logger.log(`forgot ${mine.size} backup(s) of deleted sites`);
    return mine.size;
  }

  /** Frees the data of forgotten snapshots, once a day across all workers. */
  async pruneDaily(): Promise<void> {
    // Never under a running backup or restore: a prune holds the repository to itself.
    const busy = await this.prisma.job.count({ where: { kind: { in: [JobKind.BACKUP, JobKind.RESTORE] }, status: JobStatus.RUNNING } });
    if (busy > 0) return;
    const mine = await this.redis.client.set('berth:backup:pruned', new Date().toISOString(), 'EX', PRUNE_EVERY_S, 'NX');
    if (!mine) return;
    try {
      await this.restic.prune();
      this.metrics.backupPrunes.inc({ result: 'ok' });
    } catch (e) {
      // Tried again in an hour, not at the next run: a lasting failure (a repository that does
      // not open) would otherwise start restic and log the same warning every minute. The
      // operator is told by the metric and an event (no tenant's: the repository is shared).
      const message = (e as Error).message;
      this.metrics.backupPrunes.inc({ result: 'failed' });
      this.logger.warn(`prune failed (tried again in ${PRUNE_RETRY_S / 60} minutes): ${message}`);
      await this.redis.client.set('berth:backup:pruned', `failed ${new Date().toISOString()}`, 'EX', PRUNE_RETRY_S);
      await this.events.record({
        type: 'backup.prune.failed',
        message: `Pruning the backup repository failed; tried again in ${PRUNE_RETRY_S / 60} minutes: ${message.slice(0, 500)}`,
        data: { error: message.slice(0, 2000), retryInSeconds: PRUNE_RETRY_S },
      });
    }
  }
}
