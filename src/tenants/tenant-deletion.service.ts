import { Inject, Injectable, Logger } from '@nestjs/common';
import { DelayedError, type Job as BullJob } from 'bullmq';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Job, Prisma, Tenant } from '../generated/prisma/client';
import { ApiKeyRole, DesiredState, JobKind, JobStatus, SiteStatus } from '../generated/prisma/enums';
import { BerthError, ErrorCode } from '../common/errors';
import type { Principal } from '../common/principal';
import { ApiKeysService } from '../auth/api-keys.service';
import { SiteEngine } from '../sites/site-engine';
import { EventsService } from '../events/events.service';
import { JobsService } from '../jobs/jobs.service';
import { STOP_GRACE_MS, StepRecorder } from '../jobs/step-recorder';
import { RedisService } from '../redis/redis.service';
import { SitesService } from '../sites/sites.service';
import { ResticService } from '../backups/restic.service';

/** What a DELETE_TENANT job row carries besides the tenant's id. */
export interface TenantDeletionParams {
  force: boolean;
  slug: string;
  /** The admin key that asked: the sites' deletions and the events are recorded as its doing. */
  actorKeyId: string;
}

const STEPS = 5;
/** How long a deletion waiting for its sites' deletion jobs leaves the worker before looking again. */
const SITES_POLL_MS = 1000;
const ACTIVE = [JobStatus.QUEUED, JobStatus.RUNNING];

/**
 * Runs DELETE_TENANT jobs (the site worker hands them here): revokes the tenant's keys, has
 * each site deleted by its own DELETE job, removes the tenant's network, database server and
 * volume by applying the empty plan to the tenant's scope, and last removes every row of the
 * tenant but its events, in one transaction. Every step finds what an earlier attempt left,
 * so a retried job finishes the work. While the sites' jobs run the job waits delayed in the
 * queue, not in a worker slot, so those jobs can run even with a concurrency of one.
 */
@Injectable()
export class TenantDeletionService {
  private readonly logger = new Logger('TenantDeletion');

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly jobs: JobsService,
    private readonly sites: SitesService,
    private readonly keys: ApiKeysService,
    private readonly engine: SiteEngine,
    private readonly events: EventsService,
    private readonly restic: ResticService,
  ) {}

  async process(bull: BullJob<{ jobId: string }>, token?: string): Promise<void> {
    const row = await this.prisma.job.findUnique({ where: { id: bull.data.jobId } });
    if (!row || !ACTIVE.includes(row.status as (typeof ACTIVE)[number])) return;
    const lock = await this.redis.tryLock(`berth:lock:tenant-deletion:${row.tenantId}`, this.config.BERTH_LOCK_TTL_MS);
    if (!lock) return this.later(bull, token, 500);
    let waiting: boolean;
    try {
      waiting = await this.execute(bull, row, lock.signal);
    } finally {
      await lock.release();
    }
    if (waiting) return this.later(bull, token, SITES_POLL_MS);
  }

  /** Puts the job back in the queue for a while, without using an attempt. */
  private async later(bull: BullJob, token: string | undefined, ms: number): Promise<never> {
    await bull.moveToDelayed(Date.now() + ms, token);
    throw new DelayedError();
  }

  /** One attempt; true while the sites' deletions are still running. */
  private async execute(bull: BullJob, row: Job, locked: AbortSignal): Promise<boolean> {
    const params = row.params as unknown as TenantDeletionParams;
    // A job coming back from waiting for its sites goes on with the same attempt.
    const fresh = row.status === JobStatus.QUEUED;
    const started = await this.prisma.job.update({
      where: { id: row.id },
      data: { status: JobStatus.RUNNING, error: null, ...(fresh ? { attempts: { increment: 1 }, startedAt: new Date() } : {}) },
    });
    await this.jobs.publish(started);
    // The deletion's lock lost (Redis lost its data, say): its step stops, as another
    // attempt may take the job up meanwhile.
    const steps = new StepRecorder(
      STEPS,
      this.config.BERTH_STEP_TIMEOUT_MS,
      async (list, progress) => {
        await this.jobs.publish(
          await this.prisma.job.update({ where: { id: row.id }, data: { steps: list as unknown as Prisma.InputJsonValue, progress } }),
        );
      },
      undefined,
      { signal: locked, stopGraceMs: STOP_GRACE_MS },
    );
    try {
      if ((await this.run(started, steps)) > 0) return true;
      await this.jobs.publish(
        await this.prisma.job.update({
          where: { id: row.id },
          data: { status: JobStatus.SUCCEEDED, progress: 100, finishedAt: new Date() },
        }),
      );
      this.logger.log(`job ${row.id}: tenant ${params.slug} deleted`);
      return false;
    } catch (e) {
      const message = (e as Error).message;
      const final = bull.attemptsMade + 1 >= (bull.opts.attempts ?? 1);
      const data = final
        ? { status: JobStatus.FAILED, error: message, finishedAt: new Date() }
        : { status: JobStatus.QUEUED, error: message };
      await this.jobs.publish(await this.prisma.job.update({ where: { id: row.id }, data }));
      if (final) {
        await this.events.record({
          tenantId: row.tenantId,
          type: 'tenant.delete.failed',
          message: `Deletion of tenant ${params.slug} failed: ${message}; the tenant stays DELETING until its deletion is asked for again`,
          data: { jobId: row.id },
        });
      }
      this.logger.warn(`job ${row.id} (DELETE_TENANT) attempt ${bull.attemptsMade + 1} failed: ${message}`);
      throw e;
    }
  }

  /** The steps of one attempt; returns how many site deletions it still waits for. */
  async run(job: Job, steps: StepRecorder): Promise<number> {
    const params = job.params as unknown as TenantDeletionParams;
    const tenant = await this.prisma.tenant.findUnique({ where: { id: job.tenantId } });
    // The tenant's rows go last, in one transaction: without them an earlier attempt finished.
    if (!tenant) return 0;
    await steps.run(
      'revoke API keys',
      () => this.keys.revokeAllOf(tenant.id, params.actorKeyId),
      (n) => `${n} key(s) revoked`,
    );
    const pending = await steps.run(
      'delete sites',
      () => this.deleteSites(job, tenant, params),
      (n) => (n ? `waiting for ${n} site deletion(s)` : 'no site left'),
    );
    if (pending > 0) return pending;
    // A move of the tenant to another node under way (its sites' deletions wait for it, but a
    // tenant without sites has none): its objects are removed once they are where its row says.
    const moves = await this.prisma.job.count({ where: { tenantId: tenant.id, kind: JobKind.MOVE_TENANT, status: { in: ACTIVE } } });
    if (moves > 0) {
      await steps.record('wait for the move', 'the tenant is moving to another node; its objects are removed once it has');
      return moves;
    }
    await steps.run(
      'remove network, database server and volume',
      (signal) => this.removeObjects(tenant, signal),
      (r) => r.join('; ') || 'nothing left',
    );
    // A tenant that leaves takes its backups with it: nothing of it stays readable.
    await steps.run(
      'forget backups',
      async (signal) => {
        const ids = await this.restic.snapshotIds([`tenant:${tenant.id}`], signal);
        await this.restic.forget(ids, signal);
        return ids.length;
      },
      (n) => `${n} snapshot(s) forgotten`,
    );
    await steps.run('remove the tenant', () => this.forget(job, tenant, params));
    return 0;
  }

  /**
   * The tenant's Docker objects, found by its slug. The row is read again first, by id: an
   * attempt that ran late, after another attempt had finished and forgotten the tenant, would
   * otherwise remove the objects of a new tenant that has taken the slug since.
   */
  private async removeObjects(tenant: Tenant, signal: AbortSignal): Promise<string[]> {
    if (!(await this.prisma.tenant.findUnique({ where: { id: tenant.id }, select: { id: true } })))
      return [`tenant ${tenant.slug} is gone (another attempt finished): nothing removed`];
    return this.engine.removeTenant(tenant, signal);
  }

  /**
   * Asks for each live site's deletion through the sites' own DELETE path (their jobs drop
   * the site's container, volume, database and user) and counts those still in flight.
   * A site whose deletion failed during this attempt fails the attempt, so the job ends.
   */
  private async deleteSites(job: Job, tenant: Tenant, params: TenantDeletionParams): Promise<number> {
    const sites = await this.prisma.site.findMany({
      where: { tenantId: tenant.id },
      select: { id: true, name: true, status: true, desiredState: true, lastError: true },
    });
    const jobs = await this.prisma.job.findMany({
      where: { siteId: { in: sites.map((s) => s.id) }, status: { in: ACTIVE } },
      select: { siteId: true },
    });
    const busy = new Set(jobs.map((j) => j.siteId));
    const live = sites.filter((s) => s.status !== SiteStatus.DELETED);
    if (live.length > 0 && !params.force) throw new Error(`the tenant has ${live.length} site(s) and its deletion was not forced`);
    const actor: Principal = { keyId: params.actorKeyId, role: ApiKeyRole.ADMIN, tenantId: null };
    for (const site of live) {
      if (busy.has(site.id) && site.desiredState === DesiredState.ABSENT) continue;
      if (!busy.has(site.id) && site.desiredState === DesiredState.ABSENT) {
        const failed = await this.prisma.job.findFirst({
          where: { siteId: site.id, kind: JobKind.DELETE, status: JobStatus.FAILED, finishedAt: { gte: job.startedAt ?? new Date(0) } },
        });
        if (failed) throw new Error(`site ${site.name} could not be deleted: ${failed.error ?? site.lastError ?? 'unknown error'}`);
      }
      await this.sites.act(actor, site.id, 'delete').catch((e: unknown) => {
        // Deleted since it was read: nothing left to ask for.
        if (!(e instanceof BerthError && e.code === ErrorCode.SITE_DELETED)) throw e;
      });
      busy.add(site.id);
    }
    // A deleted site whose job has not yet recorded its end still counts: its row must outlive it.
    return sites.filter((s) => s.status !== SiteStatus.DELETED || busy.has(s.id)).length;
  }

  /** Every row of the tenant goes but its events (and this job, their companion in the audit trail). */
  private async forget(job: Job, tenant: Tenant, params: TenantDeletionParams): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const sites = (await tx.site.findMany({ where: { tenantId: tenant.id }, select: { id: true } })).map((s) => s.id);
      await tx.job.deleteMany({ where: { siteId: { in: sites } } });
      await tx.backup.deleteMany({ where: { tenantId: tenant.id } });
      await tx.site.deleteMany({ where: { tenantId: tenant.id } });
      await tx.apiKey.deleteMany({ where: { tenantId: tenant.id } });
      await tx.webhook.deleteMany({ where: { tenantId: tenant.id } });
      await tx.emailNotification.deleteMany({ where: { tenantId: tenant.id } });
      await tx.tenant.delete({ where: { id: tenant.id } });
      await this.events.record(
        {
          tenantId: tenant.id,
          type: 'tenant.deleted',
          message: `Tenant ${tenant.slug} deleted with ${sites.length} site(s)`,
          data: { jobId: job.id, slug: tenant.slug, sites },
          actorKeyId: params.actorKeyId,
        },
        tx,
      );
    });
  }
}
