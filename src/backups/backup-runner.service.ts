import { Inject, Injectable } from '@nestjs/common';
import { cloneOf, type CloneOrigin } from '../jobs/job-params';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { EventsService } from '../events/events.service';
import type { Backup, Job, Prisma, Site, Tenant } from '../generated/prisma/client';
import { BackupKind, BackupStatus, DesiredState, JobKind, JobStatus, SiteStatus } from '../generated/prisma/enums';
import type { StepRecorder } from '../jobs/step-recorder';
import { SiteEngine } from '../sites/site-engine';
import { names, siteVolumeLabels } from '../sites/site-plan';
import { SitePlanner } from '../sites/site-planner';
import { RolledBackError, SiteRunner } from '../sites/site-runner.service';
import { SiteStatusWriter } from '../sites/site-status';
import { BackupEngine, BACKUP_PARTS, type BackupPart, type BackupTarget, type TakenBackup } from './backup-engine';
import { Laps } from './laps';
import { ResticService } from './restic.service';
import { toForget } from './retention';

/** What a BACKUP job's row carries. */
export interface BackupJobParams {
  backupId: string;
}

/** What a RESTORE job's row carries; checkpointId is added once the checkpoint is taken (a retry reuses it). */
export interface RestoreJobParams {
  backupId: string;
  parts: BackupPart[];
  checkpointId?: string;
  /** A push: the backup is of this other site (staging), taken for the push; the job waits for it. */
  pushFrom?: string;
}

// A clone's provisioning (its job's params) is the jobs layer's: the sites service checks for it too.
export { cloneOf, type CloneOrigin };

/** A retried restore whose checkpoint is gone: the site may be half-restored, and is left FAILED to say so. */
class CheckpointLostError extends Error {}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/**
 * Runs backup and restore jobs, as steps. A restore first takes a checkpoint of the site as it
 * is, then puts the backup back (database, files, or both), brings the site up and checks it;
 * if anything fails it puts the checkpoint back the same way and says "rolled back".
 */
@Injectable()
export class BackupRunner {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    private readonly planner: SitePlanner,
    private readonly engine: BackupEngine,
    private readonly sites: SiteEngine,
    private readonly runner: SiteRunner,
    private readonly status: SiteStatusWriter,
    private readonly restic: ResticService,
  ) {}

  async run(job: Job, steps: StepRecorder): Promise<SiteStatus> {
    if (!job.siteId) throw new Error(`job ${job.id} (${job.kind}) has no site`);
    const site = await this.prisma.site.findUniqueOrThrow({ where: { id: job.siteId } });
    const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: site.tenantId } });
    if (job.kind === JobKind.RESTORE) return this.restore(job, tenant, site, steps);
    const origin = cloneOf(job);
    if (origin) return this.clone(job, origin, tenant, site, steps);
    const { backupId } = job.params as unknown as BackupJobParams;
    const backup = await this.prisma.backup.findUniqueOrThrow({ where: { id: backupId } });
    await this.take(backup, tenant, site, steps, 'back up database and files');
    // The backup is taken: a retention that cannot run now (the repository busy) runs after the next one.
    await steps.run(
      'forget backups the policy no longer keeps',
      (signal) => this.applyRetention(site, signal).catch((e: Error) => `not now: ${e.message.slice(0, 300)}`),
      (n) => (typeof n === 'string' ? n : n ? `${n} forgotten` : 'none'),
    );
    return site.status;
  }

  /**
   * The site's retention policy over its scheduled backups and restores' checkpoints (manual
   * backups stay until deleted): the snapshots it no longer keeps are forgotten by id, their
   * rows DELETED. A backup some restore is about to use, or a tenant's move, is spared.
   */
  private async applyRetention(site: Site, signal: AbortSignal): Promise<number> {
    const rows = await this.prisma.backup.findMany({
      where: { siteId: site.id, status: BackupStatus.SUCCEEDED, kind: { in: [BackupKind.SCHEDULED, BackupKind.CHECKPOINT] } },
      select: { id: true, createdAt: true, snapshotId: true, jobId: true },
    });
    // A tenant's move under way puts its checkpoints back on the new node, or moves back with them.
    const moves = await this.prisma.job.findMany({
      where: { tenantId: site.tenantId, kind: JobKind.MOVE_TENANT, status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] } },
      select: { id: true, params: true },
    });
    const moving = new Set(moves.map((j) => j.id));
    // A move from backups (its node down) puts back backups it did not take.
    const putBack = new Set(moves.flatMap((j) => Object.values((j.params as { checkpoints?: Record<string, string> }).checkpoints ?? {})));
    const restoring = await this.prisma.job.findMany({
      where: { siteId: site.id, kind: JobKind.RESTORE, status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] } },
      select: { params: true },
    });
    // What a restore is about to put back, and the checkpoint it would roll back to.
    const spared = new Set(
      restoring.flatMap((j) => {
        const p = j.params as unknown as RestoreJobParams;
        return p.checkpointId ? [p.backupId, p.checkpointId] : [p.backupId];
      }),
    );
    const forget = toForget(rows, { keepDaily: site.backupKeepDaily, keepWeekly: site.backupKeepWeekly }).filter(
      (b) => !spared.has(b.id) && !putBack.has(b.id) && !(b.jobId && moving.has(b.jobId)),
    );
    if (!forget.length) return 0;
    await this.restic.forget(
      forget.flatMap((b) => (b.snapshotId ? [b.snapshotId] : [])),
      signal,
    );
    await this.prisma.backup.updateMany({ where: { id: { in: forget.map((b) => b.id) } }, data: { status: BackupStatus.DELETED } });
    await this.events.record({
      tenantId: site.tenantId,
      siteId: site.id,
      type: 'backup.retention',
      message: `${forget.length} backup(s) of site ${site.name} forgotten by its retention policy`,
      data: { backupIds: forget.map((b) => b.id) },
    });
    return forget.length;
  }

  /** A push's restore waits (off the worker, without using an attempt) while its source's backup is being taken. */
  async waitsForBackup(job: Pick<Job, 'kind' | 'params'>): Promise<boolean> {
    if (job.kind !== JobKind.RESTORE) return false;
    const { backupId, pushFrom } = job.params as unknown as RestoreJobParams;
    if (!pushFrom) return false;
    const backup = await this.prisma.backup.findUnique({ where: { id: backupId }, select: { status: true } });
    return backup?.status === BackupStatus.PENDING;
  }

  /** Takes the backup row's snapshot and records it; the row says SUCCEEDED, with its sizes and versions. */
  private async take(backup: Backup, tenant: Tenant, site: Site, steps: StepRecorder, step: string, beingDeleted = false): Promise<Backup> {
    if (backup.status === BackupStatus.SUCCEEDED) return backup;
    // A move carries a site whose deletion waits for it (the deletion may yet be cancelled).
    if (site.status === SiteStatus.DELETED || (site.desiredState === DesiredState.ABSENT && !beingDeleted))
      throw new Error(`site ${site.name} is deleted or being deleted: nothing to back up`);
    const taken = await steps.run(
      step,
      async (signal) => this.engine.take(await this.target(tenant, site, signal), signal),
      (r) => `snapshot ${r.snapshotId.slice(0, 8)}: ${mb(r.totalBytes)} read, ${mb(r.addedBytes)} added, ${r.tables} tables (${r.laps})`,
      this.config.BERTH_BACKUP_TIMEOUT_MS,
    );
    const done = await this.prisma.backup.update({
      where: { id: backup.id },
      data: { ...succeeded(taken), wordpressUrl: site.wordpressUrl },
    });
    await this.events.record({
      tenantId: site.tenantId,
      siteId: site.id,
      type: 'backup.succeeded',
      message: `${backup.kind === BackupKind.CHECKPOINT ? 'Checkpoint' : 'Backup'} of site ${site.name} taken (${mb(taken.totalBytes)})`,
      data: { backupId: backup.id, snapshotId: taken.snapshotId, kind: backup.kind },
    });
    return done;
  }

  private async restore(job: Job, tenant: Tenant, site: Site, steps: StepRecorder): Promise<SiteStatus> {
    const params = job.params as unknown as RestoreJobParams;
    const source = await this.prisma.backup.findUniqueOrThrow({ where: { id: params.backupId } });
    if (source.status !== BackupStatus.SUCCEEDED || !source.snapshotId)
      throw new RolledBackError(`backup ${source.id} is ${source.status.toLowerCase()}: nothing was changed`, site.status);
    if (source.siteId !== site.id && source.siteId !== params.pushFrom)
      throw new RolledBackError(`backup ${source.id} is not one of this site's: nothing was changed`, site.status);
    if (site.desiredState === DesiredState.ABSENT) throw new RolledBackError('the site is being deleted: nothing was changed', site.status);
    // The checkpoint: taken once per job, so a retried attempt puts back the state before the
    // restore, not a half-restored one.
    let checkpoint: Backup;
    try {
      checkpoint = await this.checkpoint(job, params, tenant, site, steps);
    } catch (e) {
      if (e instanceof CheckpointLostError) throw e;
      throw new RolledBackError(`the checkpoint before the restore failed: ${(e as Error).message}; nothing was changed`, site.status);
    }
    const parts = params.parts.length ? params.parts : [...BACKUP_PARTS];
    try {
      await this.putBack(tenant, site, source, parts, steps, `restore ${parts.join(' and ')} from backup`);
      const status = await this.bringUp(job, tenant, site.id, source, parts, steps);
      await this.events.record({
        tenantId: site.tenantId,
        siteId: site.id,
        type: params.pushFrom ? 'site.pushed' : 'site.restored',
        message: params.pushFrom
          ? `Site ${params.pushFrom}'s ${parts.join(' and ')} pushed to site ${site.name}`
          : `Site ${site.name} restored from backup ${source.id} (${parts.join(', ')})`,
        data: {
          jobId: job.id,
          backupId: source.id,
          checkpointId: checkpoint.id,
          parts,
          ...(params.pushFrom ? { pushFrom: params.pushFrom } : {}),
        },
      });
      return status;
    } catch (e) {
      // The lock was lost: another worker owns the site now and runs this job again.
      if (steps.interrupted) throw e;
      const message = (e as Error).message;
      try {
        await this.putBack(tenant, site, checkpoint, [...BACKUP_PARTS], steps, 'roll back to the checkpoint');
        const status = await this.bringUp(job, tenant, site.id, checkpoint, [...BACKUP_PARTS], steps);
        throw new RolledBackError(`restore failed and was rolled back to checkpoint ${checkpoint.id}: ${message}`, status);
      } catch (again) {
        if (again instanceof RolledBackError) throw again;
        throw new Error(
          `restore failed: ${message}; rolling back to checkpoint ${checkpoint.id} failed too: ${(again as Error).message} (restore that backup to retry)`,
          { cause: again },
        );
      }
    }
  }

  /**
   * Provisions a clone: its objects and empty database first, then the backup's database and
   * files copied in, then the site brought up as any other (installed already: the converge
   * moves every URL from the backup's to the clone's, GUIDs aside). A failure leaves the new
   * site FAILED, to delete or provision again; the source is never touched.
   */
  private async clone(job: Job, origin: CloneOrigin['cloneOf'], tenant: Tenant, site: Site, steps: StepRecorder): Promise<SiteStatus> {
    // A deletion asked for meanwhile, or any newer request: the ordinary path handles it.
    if (site.desiredState === DesiredState.ABSENT || site.generation !== job.generation || site.installedAt)
      return this.runner.run(job, steps);
    const backup = await this.prisma.backup.findUniqueOrThrow({ where: { id: origin.backupId } });
    if (backup.status !== BackupStatus.SUCCEEDED || !backup.snapshotId)
      throw new Error(`backup ${backup.id} of site ${origin.siteId} is ${backup.status.toLowerCase()}: nothing to copy`);
    await this.status.set(site, { status: SiteStatus.PROVISIONING }, job.generation);
    const placed = await this.runner.placeObjects(tenant, site, steps);
    await this.putBack(tenant, placed.site, backup, [...BACKUP_PARTS], steps, 'copy database and files from backup', job.generation);
    const status = await this.bringUp(job, tenant, site.id, backup, [...BACKUP_PARTS], steps, job.generation);
    await this.events.record({
      tenantId: site.tenantId,
      siteId: site.id,
      type: 'site.cloned',
      message: `Site ${site.name} made from backup ${backup.id} of site ${origin.siteId}`,
      data: { jobId: job.id, sourceSiteId: origin.siteId, backupId: backup.id },
    });
    return status;
  }

  /**
   * A tenant's move, first half, for one site: the site is RESTORING (not probed), its
   * WordPress stopped so nothing writes any more, and a checkpoint of it taken where it is
   * (`where`: the node it is on). A checkpoint an earlier attempt took (`taken`) is reused.
   */
  async checkpointForMove(job: Job, where: Tenant, site: Site, taken: string | undefined, steps: StepRecorder): Promise<Backup> {
    const existing = taken ? await this.prisma.backup.findUnique({ where: { id: taken } }) : null;
    if (existing?.status === BackupStatus.SUCCEEDED) return existing;
    const fresh = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id } });
    await this.status.set(fresh, { status: SiteStatus.RESTORING }, fresh.generation);
    await steps.run(`stop ${site.name}`, (signal) =>
      this.sites.stopWordPress(names.wpContainer(this.config.BERTH_INSTANCE, where.slug, site.name), signal),
    );
    const row =
      existing ??
      (await this.prisma.backup.create({ data: { tenantId: site.tenantId, siteId: site.id, kind: BackupKind.CHECKPOINT, jobId: job.id } }));
    try {
      return await this.take(row, where, fresh, steps, `checkpoint of ${site.name}`, true);
    } catch (e) {
      await this.prisma.backup.update({
        where: { id: row.id },
        data: { status: BackupStatus.FAILED, error: (e as Error).message, finishedAt: new Date() },
      });
      throw e;
    }
  }

  /**
   * A tenant's move, second half, for one site: its objects made on the tenant's (new) node and
   * the checkpoint put back there. WordPress is left stopped: nothing writes on the new node
   * until every site of the tenant is in (`bringUpMoved`), so a move back loses nothing.
   */
  async putBackForMove(job: Job, tenant: Tenant, site: Site, checkpoint: Backup, steps: StepRecorder): Promise<void> {
    const fresh = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id } });
    const placed = await this.runner.placeObjects(tenant, fresh, steps);
    await this.putBack(tenant, placed.site, checkpoint, [...BACKUP_PARTS], steps, `put ${site.name} back`);
  }

  /** A tenant's move, last half, for one site: brought up on its new node as its row says (domains, URL, state), and checked. */
  bringUpMoved(job: Job, tenant: Tenant, site: Site, checkpoint: Backup, steps: StepRecorder): Promise<SiteStatus> {
    return this.bringUp({ ...job, siteId: site.id }, tenant, site.id, checkpoint, [...BACKUP_PARTS], steps);
  }

  private async checkpoint(job: Job, params: RestoreJobParams, tenant: Tenant, site: Site, steps: StepRecorder): Promise<Backup> {
    const existing = params.checkpointId ? await this.prisma.backup.findUnique({ where: { id: params.checkpointId } }) : null;
    if (existing?.status === BackupStatus.SUCCEEDED) return existing;
    // Deleted since an earlier attempt took it: that attempt may have changed the site already,
    // and a new checkpoint would hold the half-restored site. Stop rather than pretend.
    if (existing?.status === BackupStatus.DELETED)
      throw new CheckpointLostError(`the checkpoint ${existing.id} this restore took was deleted since; restore a backup again to retry`);
    const row =
      existing ??
      (await this.prisma.backup.create({
        data: { tenantId: site.tenantId, siteId: site.id, kind: BackupKind.CHECKPOINT, jobId: job.id },
      }));
    if (!existing)
      await this.prisma.job.update({
        where: { id: job.id },
        data: { params: { ...params, checkpointId: row.id } as unknown as Prisma.InputJsonValue },
      });
    try {
      return await this.take(row, tenant, site, steps, 'checkpoint of the current state');
    } catch (e) {
      await this.prisma.backup.update({
        where: { id: row.id },
        data: { status: BackupStatus.FAILED, error: (e as Error).message, finishedAt: new Date() },
      });
      throw e;
    }
  }

  /**
   * Stops the site and puts a snapshot's parts back; a restored site is RESTORING meanwhile
   * (not probed), a clone stays PROVISIONING. Writes only at `generation` (a clone's) or,
   * without one, the site's current (a restore's: no request supersedes it).
   */
  private async putBack(
    tenant: Tenant,
    site: Site,
    from: Backup,
    parts: BackupPart[],
    steps: StepRecorder,
    step: string,
    generation?: number,
  ): Promise<void> {
    if (generation === undefined) {
      const fresh = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id } });
      await this.status.set(site, { status: SiteStatus.RESTORING }, fresh.generation);
    }
    const snapshot = from.snapshotId as string;
    const laps = new Laps();
    await steps.run(
      step,
      async (signal) => {
        const target = await this.target(tenant, site, signal);
        // A clone's container was only just made: it serves no one, and WordPress's entrypoint,
        // still copying its files, would not hear the polite signal (10 s lost each time).
        // Only a task on the tenant's node writes to the volume put back there (after a move from
        // backups, the one on the dead node the manager still lists does not).
        const image = await this.sites.stopWordPress(target.wpName, signal, generation === undefined ? 10 : 0, tenant.nodeId ?? undefined);
        laps.lap('stop');
        if (parts.includes('database')) await this.engine.restoreDatabase(target, snapshot, signal);
        laps.lap('database');
        if (parts.includes('files'))
          await this.engine.restoreFiles(target, image ?? target.image, snapshot, signal, {
            freshKeys: from.siteId !== site.id,
          });
        laps.lap('files');
      },
      () =>
        `snapshot ${snapshot.slice(0, 8)} (${from.kind === BackupKind.CHECKPOINT ? 'checkpoint' : 'backup'} ${from.id}): ${parts.join(', ')} (${laps})`,
      this.config.BERTH_BACKUP_TIMEOUT_MS,
    );
  }

  /**
   * Brings the site up as its row says (its URL and domains stay: a restored database is moved
   * from the backup's URL to the site's), then checks it holds what was put back: every table
   * of the backup, and a home page that is not WordPress's installer.
   */
  private async bringUp(
    job: Job,
    tenant: Tenant,
    siteId: string,
    from: Backup,
    parts: BackupPart[],
    steps: StepRecorder,
    generation?: number,
  ) {
    const row = await this.prisma.site.findUniqueOrThrow({ where: { id: siteId } });
    const current = generation ?? row.generation;
    // The database now says WordPress lives at the backup's URL (and is installed): the
    // converge moves it to the site's own.
    if (parts.includes('database'))
      await this.status.set(
        row,
        { installedAt: row.installedAt ?? new Date(), ...(from.wordpressUrl ? { wordpressUrl: from.wordpressUrl } : {}) },
        current,
      );
    const site = await this.prisma.site.findUniqueOrThrow({ where: { id: siteId } });
    const status = await this.runner.converge({ ...job, generation: current }, tenant, site, steps);
    await steps.run(
      'check the restored site',
      async (signal) => {
        if (parts.includes('database') && from.tables !== null) {
          const tables = await this.engine.tableCount(await this.target(tenant, site, signal), signal);
          if (tables !== from.tables) throw new Error(`the database has ${tables} tables, the backup had ${from.tables}`);
        }
        if (status === SiteStatus.RUNNING) {
          const fresh = await this.prisma.site.findUniqueOrThrow({ where: { id: siteId }, select: { hostPort: true } });
          const home = await this.sites.homePage(fresh, names.wpContainer(this.config.BERTH_INSTANCE, tenant.slug, site.name), signal);
          if (home.status >= 500) throw new Error(`the home page answers HTTP ${home.status}`);
          if (home.location?.includes('/wp-admin/install.php'))
            throw new Error("the home page sends visitors to WordPress's installer: the database holds no site");
          return `home page answers HTTP ${home.status}`;
        }
        return 'site is stopped';
      },
      (r) => r ?? 'checked',
    );
    return status;
  }

  /** Where the site is now (on a Swarm: the nodes its tasks run on). */
  private async target(tenant: Tenant, site: Site, signal: AbortSignal): Promise<BackupTarget> {
    const instance = this.config.BERTH_INSTANCE;
    return {
      ...(await this.sites.contentPlaces(tenant, site.name, signal)),
      siteId: site.id,
      tenantId: site.tenantId,
      tenantSlug: tenant.slug,
      rootPassword: this.planner.tenantFacts(tenant).dbRootPassword,
      dbName: site.dbName,
      wpName: names.wpContainer(instance, tenant.slug, site.name),
      volume: names.siteVolume(instance, tenant.slug, site.name),
      volumeLabels: siteVolumeLabels(instance, tenant.slug, site),
      image: this.image(site),
    };
  }

  private image(site: Site): string {
    return this.planner.sealedSiteFacts(site).image ?? this.config.BERTH_WORDPRESS_IMAGE;
  }
}

function succeeded(t: TakenBackup): Prisma.BackupUpdateInput {
  return {
    status: BackupStatus.SUCCEEDED,
    snapshotId: t.snapshotId,
    sizeBytes: BigInt(t.totalBytes),
    addedBytes: BigInt(t.addedBytes),
    durationMs: t.durationMs,
    wordpressVersion: t.wordpressVersion,
    image: t.image,
    tables: t.tables,
    error: null,
    finishedAt: new Date(),
  };
}
