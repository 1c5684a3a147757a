import { Inject, Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { PrismaService } from '../database/prisma.service';
import type { Backup, Job, Prisma, Site } from '../generated/prisma/client';
import { lockSiteRow } from '../sites/site-row';
import { BackupKind, BackupStatus, DesiredState, JobKind, SiteStatus } from '../generated/prisma/enums';
import { BerthError, ErrorCode } from '../common/errors';
import { isUuid } from '../common/ids';
import { assertCanWrite, canSeeTenant, tenantScope, type Principal } from '../common/principal';
import { EventsService } from '../events/events.service';
import { JobsService, toJobView } from '../jobs/jobs.service';
import type { JobView } from '../jobs/dto/job.dto';
import { BACKUP_PARTS, DUMP_PATH } from './backup-engine';
import type { BackupJobParams, CloneOrigin, RestoreJobParams } from './backup-runner.service';
import type {
  BackupAndJobView,
  BackupFilterArgs,
  BackupPolicyInput,
  BackupPolicyView,
  BackupView,
  CloneInput,
  PushInput,
  RestoreInput,
} from './dto/backup.dto';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { SitesService } from '../sites/sites.service';
import { DomainsService } from '../domains/domains.service';
import type { SiteAndJobView } from '../sites/dto/site.dto';
import { wordpressSettings } from '../sites/wordpress-install';
import { ResticService } from './restic.service';

/** A backup row, with its site's deletion time when it is known (a live site's backups do not expire). */
type BackupRow = Backup & { site?: { deletedAt: Date | null } };
const WITH_SITE = { site: { select: { deletedAt: true } } } as const;

export function toBackupView(b: BackupRow, keepDeletedDays = 0): BackupView {
  const { sizeBytes, addedBytes, site, ...rest } = b;
  const deletedAt = site?.deletedAt;
  return {
    ...rest,
    sizeBytes: sizeBytes === null ? null : Number(sizeBytes),
    addedBytes: addedBytes === null ? null : Number(addedBytes),
    expiresAt: deletedAt && b.status !== BackupStatus.DELETED ? new Date(deletedAt.getTime() + keepDeletedDays * 86_400_000) : null,
  };
}

const policyView = (s: Site): BackupPolicyView => ({
  intervalHours: s.backupIntervalHours,
  keepDaily: s.backupKeepDaily,
  keepWeekly: s.backupKeepWeekly,
  nextBackupAt: s.nextBackupAt,
});

/** Sites that hold something to back up: created, and not on their way out. */
const BACKUPABLE: ReadonlySet<SiteStatus> = new Set([SiteStatus.RUNNING, SiteStatus.STOPPED, SiteStatus.FAILED, SiteStatus.RESTORING]);

/** Refuses a site that holds nothing to back up or put back: deleted, on its way out, or not made yet. */
function assertBackupable(site: Site, notYet: string): void {
  if (site.status === SiteStatus.DELETED || site.desiredState === DesiredState.ABSENT)
    throw new BerthError(ErrorCode.SITE_DELETED, `Site ${site.name} is deleted or being deleted`);
  if (!BACKUPABLE.has(site.status))
    throw new BerthError(ErrorCode.SITE_BUSY, `Site ${site.name} is ${site.status.toLowerCase()}: ${notYet}`);
}

/** Backups of a tenant's sites: taking, listing, restoring and deleting them, scoped to the caller's tenant. */
@Injectable()
export class BackupsService {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly jobs: JobsService,
    private readonly events: EventsService,
    private readonly restic: ResticService,
    private readonly sites: SitesService,
    private readonly domains: DomainsService,
  ) {}

  /** Records the backup and the job that takes it; the job runs when the site's other jobs have. */
  async create(actor: Principal, siteId: string): Promise<BackupAndJobView> {
    assertCanWrite(actor);
    const { backup, job } = await this.prisma.$transaction(async (tx) => {
      const site = await lockSiteRow(tx, actor, siteId);
      assertBackupable(site, 'there is nothing to back up yet');
      return this.request(tx, site, BackupKind.MANUAL, actor.keyId);
    });
    await this.jobs.enqueue(job);
    return { backup: toBackupView(backup), job: toJobView(job) };
  }

  /**
   * A new site made from a backup of another (a clone, a staging copy, or a deleted site
   * brought back): its own container, volume, database, user and credentials, in the source's
   * tenant unless an admin names another. Its provisioning job copies the backup in and moves
   * every URL of the source to the new site's (serialized and JSON-escaped forms too).
   */
  async clone(actor: Principal, sourceId: string, input: CloneInput): Promise<SiteAndJobView> {
    assertCanWrite(actor);
    const source = isUuid(sourceId) ? await this.prisma.site.findUnique({ where: { id: sourceId }, include: { tenant: true } }) : null;
    if (!source || !canSeeTenant(actor, source.tenantId)) throw new BerthError(ErrorCode.SITE_NOT_FOUND, `Site ${sourceId} was not found`);
    const backup = input.backupId
      ? isUuid(input.backupId)
        ? await this.prisma.backup.findUnique({ where: { id: input.backupId } })
        : null
      : await this.prisma.backup.findFirst({
          where: { siteId: source.id, status: BackupStatus.SUCCEEDED },
          orderBy: { createdAt: 'desc' },
        });
    if (input.backupId && (!backup || backup.siteId !== source.id))
      throw new BerthError(ErrorCode.BACKUP_NOT_FOUND, `Site ${source.name} has no backup ${input.backupId}`);
    if (!backup) throw new BerthError(ErrorCode.BACKUP_NOT_AVAILABLE, `Site ${source.name} has no backup to copy; take one first`);
    if (backup.status !== BackupStatus.SUCCEEDED)
      throw new BerthError(ErrorCode.BACKUP_NOT_AVAILABLE, `Backup ${backup.id} is ${backup.status.toLowerCase()}: it cannot be copied`);
    const { title, adminUser, adminEmail, locale } = wordpressSettings(source, source.tenant);
    const origin: CloneOrigin = { cloneOf: { siteId: source.id, backupId: backup.id } };
    // Its own hostname from the start: the copy's URLs are moved to it, never to the platform's first.
    const domain = input.domain ? this.domains.checked({ hostname: input.domain }, 'domain') : undefined;
    return this.sites.create(
      actor,
      {
        name: input.name,
        tenantId: input.tenantId ?? source.tenantId,
        wordpress: { title, adminUser, adminEmail, ...(locale ? { locale } : {}) },
      },
      undefined,
      {
        params: { ...origin },
        description: `a copy of site ${source.name} from backup ${backup.id}${domain ? ` at ${domain.hostname}` : ''}`,
        ...(domain ? { withSite: async (tx, site) => void (await this.domains.insert(tx, site, domain, true, actor.keyId)) } : {}),
      },
    );
  }

  /** Records a backup of the site and the job that takes it (in the caller's transaction, which enqueues the job after it commits). */
  async request(tx: Prisma.TransactionClient, site: Site, kind: BackupKind, actorKeyId?: string): Promise<{ backup: Backup; job: Job }> {
    const backup = await tx.backup.create({ data: { tenantId: site.tenantId, siteId: site.id, kind } });
    const params: BackupJobParams = { backupId: backup.id };
    const job = await tx.job.create({
      data: { tenantId: site.tenantId, siteId: site.id, kind: JobKind.BACKUP, generation: site.generation, params: { ...params } },
    });
    await this.events.record(
      {
        tenantId: site.tenantId,
        siteId: site.id,
        type: 'backup.requested',
        message: `${kind === BackupKind.SCHEDULED ? 'Scheduled backup' : 'Backup'} of site ${site.name} requested`,
        data: { backupId: backup.id, jobId: job.id, kind },
        ...(actorKeyId ? { actorKeyId } : {}),
      },
      tx,
    );
    return { backup: await tx.backup.update({ where: { id: backup.id }, data: { jobId: job.id } }), job };
  }

  async policy(actor: Principal, siteId: string): Promise<BackupPolicyView> {
    return policyView(await this.sites.getRow(actor, siteId));
  }

  /**
   * Sets the site's schedule and retention, within the operator's limits. A new interval puts
   * the site back on the schedule at its own offset; retention applies after the next backup.
   */
  async setPolicy(actor: Principal, siteId: string, input: BackupPolicyInput): Promise<BackupPolicyView> {
    assertCanWrite(actor);
    const c = this.config;
    if (input.intervalHours !== 0 && input.intervalHours < c.BERTH_BACKUP_MIN_INTERVAL_HOURS)
      throw new BerthError(
        ErrorCode.QUOTA_EXCEEDED,
        `intervalHours must be 0 (no schedule) or at least ${c.BERTH_BACKUP_MIN_INTERVAL_HOURS}`,
      );
    if (input.keepDaily > c.BERTH_BACKUP_MAX_KEEP_DAILY)
      throw new BerthError(ErrorCode.QUOTA_EXCEEDED, `keepDaily must be at most ${c.BERTH_BACKUP_MAX_KEEP_DAILY}`);
    if (input.keepWeekly > c.BERTH_BACKUP_MAX_KEEP_WEEKLY)
      throw new BerthError(ErrorCode.QUOTA_EXCEEDED, `keepWeekly must be at most ${c.BERTH_BACKUP_MAX_KEEP_WEEKLY}`);
    const site = await this.prisma.$transaction(async (tx) => {
      const row = await lockSiteRow(tx, actor, siteId);
      if (row.status === SiteStatus.DELETED) throw new BerthError(ErrorCode.SITE_DELETED, `Site ${row.name} is deleted`);
      const updated = await tx.site.update({
        where: { id: row.id },
        data: {
          backupIntervalHours: input.intervalHours,
          backupKeepDaily: input.keepDaily,
          backupKeepWeekly: input.keepWeekly,
          ...(input.intervalHours !== row.backupIntervalHours ? { nextBackupAt: null } : {}),
        },
      });
      await this.events.record(
        {
          tenantId: row.tenantId,
          siteId: row.id,
          type: 'backup.policy.changed',
          message: `Backups of site ${row.name}: every ${input.intervalHours} h, keeping ${input.keepDaily} daily and ${input.keepWeekly} weekly`,
          data: { ...input },
          actorKeyId: actor.keyId,
        },
        tx,
      );
      return updated;
    });
    return policyView(site);
  }

  private view(b: BackupRow): BackupView {
    return toBackupView(b, this.config.BERTH_BACKUP_KEEP_DELETED_DAYS);
  }

  /** A site's backups, newest first (a deleted site's too: they outlive it). */
  async list(actor: Principal, siteId: string): Promise<BackupView[]> {
    const site = await this.sites.getRow(actor, siteId);
    const rows = await this.prisma.backup.findMany({
      where: { siteId: site.id },
      orderBy: { createdAt: 'desc' },
      take: 500,
      include: WITH_SITE,
    });
    return rows.map((b) => this.view(b));
  }

  /** A tenant's backups, newest first: of one site, of its deleted sites, or all. */
  async listTenant(actor: Principal, filter: BackupFilterArgs): Promise<BackupView[]> {
    const scope = tenantScope(actor);
    if (scope && filter.tenantId && filter.tenantId !== scope) return [];
    const tenantId = scope ?? filter.tenantId;
    const rows = await this.prisma.backup.findMany({
      where: {
        ...(tenantId ? { tenantId } : {}),
        ...(filter.siteId ? { siteId: filter.siteId } : {}),
        ...(filter.deletedSites ? { site: { status: SiteStatus.DELETED }, status: { not: BackupStatus.DELETED } } : {}),
      },
      orderBy: { createdAt: 'desc' },
      take: filter.limit,
      skip: filter.offset,
      include: WITH_SITE,
    });
    return rows.map((b) => this.view(b));
  }

  async get(actor: Principal, id: string): Promise<BackupView> {
    return this.view(await this.row(actor, id));
  }

  /**
   * Puts a backup of the site back (database, files, or both): a job takes a checkpoint of the
   * site as it is first, and rolls back to it if the restore fails.
   */
  async restore(actor: Principal, siteId: string, input: RestoreInput): Promise<{ job: JobView }> {
    assertCanWrite(actor);
    const job = await this.prisma.$transaction(async (tx) => {
      const site = await lockSiteRow(tx, actor, siteId);
      assertBackupable(site, 'restore it once it is provisioned');
      const backup = isUuid(input.backupId) ? await tx.backup.findUnique({ where: { id: input.backupId } }) : null;
      // Another site's backup answers like a missing one: a restore never crosses sites this way.
      if (!backup || backup.siteId !== site.id)
        throw new BerthError(ErrorCode.BACKUP_NOT_FOUND, `Site ${site.name} has no backup ${input.backupId}`);
      if (backup.status !== BackupStatus.SUCCEEDED)
        throw new BerthError(
          ErrorCode.BACKUP_NOT_AVAILABLE,
          `Backup ${backup.id} is ${backup.status.toLowerCase()}: it cannot be restored`,
        );
      const params: RestoreJobParams = { backupId: backup.id, parts: input.parts?.length ? input.parts : [...BACKUP_PARTS] };
      const created = await tx.job.create({
        data: { tenantId: site.tenantId, siteId: site.id, kind: JobKind.RESTORE, generation: site.generation, params: { ...params } },
      });
      await this.events.record(
        {
          tenantId: site.tenantId,
          siteId: site.id,
          type: 'site.restore.requested',
          message: `Restore of site ${site.name} from backup ${backup.id} requested (${params.parts.join(', ')})`,
          data: { backupId: backup.id, jobId: created.id, parts: params.parts },
          actorKeyId: actor.keyId,
        },
        tx,
      );
      return created;
    });
    await this.jobs.enqueue(job);
    return { job: toJobView(job) };
  }

  /**
   * The backup as a .tar.gz (database.sql and files/), for a customer who leaves: streamed from
   * restic through gzip, never held whole. The snapshot is checked first, so a backup whose
   * data is gone answers 409 before anything is sent; `stop` ends restic if the client leaves.
   */
  async download(actor: Principal, id: string): Promise<{ filename: string; stream: Readable; stop(): void }> {
    const backup = await this.row(actor, id);
    if (backup.status !== BackupStatus.SUCCEEDED || !backup.snapshotId)
      throw new BerthError(ErrorCode.BACKUP_NOT_AVAILABLE, `Backup ${id} is ${backup.status.toLowerCase()}: there is nothing to download`);
    const dumpSize = await this.restic.fileSize(backup.snapshotId, DUMP_PATH).catch(() => undefined);
    if (dumpSize === undefined)
      throw new BerthError(ErrorCode.BACKUP_NOT_AVAILABLE, `Backup ${id}'s snapshot cannot be read from the backup repository`);
    const site = await this.prisma.site.findUniqueOrThrow({ where: { id: backup.siteId }, select: { name: true } });
    const tar = this.restic.dump(backup.snapshotId, '/');
    const gzip = createGzip();
    tar.stream.on('error', (e) => gzip.destroy(e));
    tar.done.catch((e: Error) => gzip.destroy(e));
    tar.stream.pipe(gzip);
    await this.events.record({
      tenantId: backup.tenantId,
      siteId: backup.siteId,
      type: 'backup.downloaded',
      message: `Backup ${id} downloaded`,
      data: { backupId: id },
      actorKeyId: actor.keyId,
    });
    const day = backup.createdAt.toISOString().slice(0, 10);
    return { filename: `${site.name}-${day}-${backup.id.slice(0, 8)}.tar.gz`, stream: gzip, stop: () => tar.stop() };
  }

  /**
   * Copies this site (a staging copy) onto another of its tenant (live): a backup of this site
   * is taken now, then a restore job on the target puts it back as any restore does (a
   * checkpoint of the target first, rolled back to on failure), moving its URLs to the target's.
   */
  async push(actor: Principal, sourceId: string, input: PushInput): Promise<{ backup: BackupView; job: JobView }> {
    assertCanWrite(actor);
    const { backup, job } = await this.prisma
      .$transaction(async (tx) => {
        const source = await lockSiteRow(tx, actor, sourceId);
        const target = await lockSiteRow(tx, actor, input.targetSiteId);
        if (target.tenantId !== source.tenantId || target.id === source.id)
          throw new BerthError(ErrorCode.SITE_NOT_FOUND, `Site ${input.targetSiteId} was not found`);
        for (const s of [source, target]) assertBackupable(s, 'push once it is provisioned');
        const taken = await this.request(tx, source, BackupKind.MANUAL, actor.keyId);
        const parts = input.parts?.length ? input.parts : [...BACKUP_PARTS];
        const params: RestoreJobParams = { backupId: taken.backup.id, parts, pushFrom: source.id };
        const restore = await tx.job.create({
          data: {
            tenantId: target.tenantId,
            siteId: target.id,
            kind: JobKind.RESTORE,
            generation: target.generation,
            params: { ...params },
          },
        });
        await this.events.record(
          {
            tenantId: target.tenantId,
            siteId: target.id,
            type: 'site.push.requested',
            message: `Push of site ${source.name}'s ${parts.join(' and ')} to site ${target.name} requested`,
            data: { jobId: restore.id, backupJobId: taken.job.id, backupId: taken.backup.id, pushFrom: source.id, parts },
            actorKeyId: actor.keyId,
          },
          tx,
        );
        return { backup: taken.backup, job: restore, backupJob: taken.job };
      })
      .then(async (r) => {
        await this.jobs.enqueue(r.backupJob);
        await this.jobs.enqueue(r.job);
        return r;
      });
    return { backup: toBackupView(backup), job: toJobView(job) };
  }

  /** Forgets the backup's snapshot (its data goes at the repository's next prune); the row stays, DELETED. */
  async delete(actor: Principal, id: string): Promise<BackupView> {
    assertCanWrite(actor);
    const backup = await this.row(actor, id);
    if (backup.status === BackupStatus.PENDING)
      throw new BerthError(ErrorCode.BACKUP_NOT_AVAILABLE, `Backup ${id} is still being taken; cancel its job ${backup.jobId} instead`);
    if (backup.status === BackupStatus.DELETED) return toBackupView(backup);
    if (await this.inUse(backup))
      throw new BerthError(
        ErrorCode.SITE_BUSY,
        `Backup ${id} is in use by a restore or a tenant's move; delete it once that job has finished`,
      );
    if (backup.snapshotId)
      await this.restic.forget([backup.snapshotId]).catch((e: Error) => {
        if (/already locked/.test(e.message))
          throw new BerthError(
            ErrorCode.UNAVAILABLE,
            'The backup repository is busy (a backup, restore or download holds it); try again shortly',
          );
        throw e;
      });
    const deleted = await this.prisma.backup.update({ where: { id }, data: { status: BackupStatus.DELETED } });
    await this.events.record({
      tenantId: backup.tenantId,
      siteId: backup.siteId,
      type: 'backup.deleted',
      message: `Backup ${id} deleted`,
      data: { backupId: id },
      actorKeyId: actor.keyId,
    });
    return toBackupView(deleted);
  }

  /** A restore is about to put it back (or roll back to it), or a tenant's move under way puts it back (its checkpoint, or the backup a move from backups took). */
  private async inUse(backup: { id: string; siteId: string; jobId: string | null }): Promise<boolean> {
    const active: Job[] = await this.prisma.job.findMany({
      where: {
        status: { in: ['QUEUED', 'RUNNING'] },
        OR: [
          { kind: JobKind.RESTORE, params: { path: ['backupId'], equals: backup.id } },
          { kind: JobKind.RESTORE, params: { path: ['checkpointId'], equals: backup.id } },
          ...(backup.jobId ? [{ kind: JobKind.MOVE_TENANT, id: backup.jobId }] : []),
          // A move from backups puts this one back in place of a checkpoint.
          { kind: JobKind.MOVE_TENANT, params: { path: ['checkpoints', backup.siteId], equals: backup.id } },
        ],
      },
      take: 1,
    });
    return active.length > 0;
  }

  /** The backup if the actor may see it; another tenant's answers like a missing one. */
  private async row(actor: Principal, id: string): Promise<BackupRow> {
    const backup = isUuid(id) ? await this.prisma.backup.findUnique({ where: { id }, include: WITH_SITE }) : null;
    if (!backup || !canSeeTenant(actor, backup.tenantId)) throw new BerthError(ErrorCode.BACKUP_NOT_FOUND, `Backup ${id} was not found`);
    return backup;
  }
}
