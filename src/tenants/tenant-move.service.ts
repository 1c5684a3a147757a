import { Inject, Injectable, Logger } from '@nestjs/common';
import { DelayedError, UnrecoverableError, type Job as BullJob } from 'bullmq';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Backup, Job, Prisma, Site, Tenant } from '../generated/prisma/client';
import { DesiredState, JobKind, JobStatus, SiteStatus } from '../generated/prisma/enums';
import { BackupRunner } from '../backups/backup-runner.service';
import { EventsService } from '../events/events.service';
import { JobsService } from '../jobs/jobs.service';
import { StepRecorder } from '../jobs/step-recorder';
import { RedisService, type Lock } from '../redis/redis.service';
import { names } from '../sites/site-plan';
import { SitePlanner } from '../sites/site-planner';
import { SiteRunner } from '../sites/site-runner.service';
import { SwarmSiteEngine } from '../sites/swarm-site-engine';
import { NodesService, type TenantMoveParams } from '../nodes/nodes.service';

const ACTIVE: JobStatus[] = [JobStatus.QUEUED, JobStatus.RUNNING];
/** How long a move waits, off the worker, for a site job of the tenant to end before it looks again. */
const SITES_POLL_MS = 1000;

/** A failure after the tenant's sites run on the new node: nothing is moved back. */
class LeftoversError extends Error {}

/**
 * Moves a tenant to another Swarm node (an evacuation: POST /v1/nodes/{id}/evacuate), as a
 * MOVE_TENANT job. A tenant's volumes are local to its node and Swarm moves no data, so the
 * move goes through backup and restore, as an operator would by hand:
 *
 * 1. choose the node with the most room (and book it: the tenant's row names it);
 * 2. for each site: RESTORING (not probed), WordPress stopped, a checkpoint taken where it is;
 * 3. the tenant's database server applied on the new node (a fresh volume), then each site's
 *    objects there, its checkpoint put back and the site brought up as its row says (the
 *    same service names: its domains and edge routes do not change);
 * 4. only then, the tenant's containers and volumes on the old node removed.
 *
 * Until step 4 the old node keeps everything: a failure moves the tenant back there and
 * brings its sites up as they were, and the job fails saying so. While the move runs it holds
 * every site's lock and the sites' other jobs (and new sites') wait for it (SiteWorker).
 */
@Injectable()
export class TenantMoveService {
  private readonly logger = new Logger('TenantMove');

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly jobs: JobsService,
    private readonly events: EventsService,
    private readonly nodes: NodesService,
    private readonly engine: SwarmSiteEngine,
    private readonly runner: SiteRunner,
    private readonly backups: BackupRunner,
    private readonly planner: SitePlanner,
  ) {}

  /** Whether the tenant is being moved: its sites' jobs wait until the move has ended. */
  async moving(tenantId: string): Promise<boolean> {
    return (await this.prisma.job.count({ where: { tenantId, kind: JobKind.MOVE_TENANT, status: JobStatus.RUNNING } })) > 0;
  }

  async process(bull: BullJob<{ jobId: string }>, token?: string): Promise<void> {
    const row = await this.prisma.job.findUnique({ where: { id: bull.data.jobId } });
    if (!row || !ACTIVE.includes(row.status)) return;
    // RUNNING before any site's lock is taken: a site job that takes its lock from now on
    // finds the move running and waits for it.
    const fresh = row.status === JobStatus.QUEUED;
    const started = await this.prisma.job.update({
      where: { id: row.id },
      data: { status: JobStatus.RUNNING, error: null, ...(fresh ? { attempts: { increment: 1 }, startedAt: new Date() } : {}) },
    });
    if (fresh) await this.jobs.publish(started);
    const sites = await this.prisma.site.findMany({
      where: { tenantId: row.tenantId, status: { not: SiteStatus.DELETED } },
      orderBy: { name: 'asc' },
    });
    const locks: Lock[] = [];
    for (const site of sites) {
      const lock = await this.redis.tryLock(`berth:lock:site:${site.id}`, this.config.BERTH_LOCK_TTL_MS);
      if (!lock) {
        // A job of that site is running: the move waits for it, off the worker.
        await Promise.all(locks.map((l) => l.release()));
        await bull.moveToDelayed(Date.now() + SITES_POLL_MS, token);
        throw new DelayedError();
      }
      locks.push(lock);
    }
    try {
      await this.execute(started, sites, locks);
    } finally {
      await Promise.all(locks.map((l) => l.release()));
    }
  }

  private async execute(job: Job, sites: Site[], locks: Lock[]): Promise<void> {
    const steps = new StepRecorder(
      3 + sites.length * 8,
      this.config.BERTH_STEP_TIMEOUT_MS,
      async (list, progress) => {
        await this.jobs.publish(
          await this.prisma.job.update({ where: { id: job.id }, data: { steps: list as unknown as Prisma.InputJsonValue, progress } }),
        );
      },
      async () => {
        for (const l of locks) await l.verify();
      },
      { signal: AbortSignal.any(locks.map((l) => l.signal)) },
    );
    const params = job.params as unknown as TenantMoveParams;
    try {
      const to = await this.move(job, sites, steps);
      await this.jobs.publish(
        await this.prisma.job.update({
          where: { id: job.id },
          data: { status: JobStatus.SUCCEEDED, progress: 100, finishedAt: new Date() },
        }),
      );
      const [fromName, toName] = [await this.nodes.hostname(params.fromNodeId), await this.nodes.hostname(to)];
      await this.events.record({
        tenantId: job.tenantId,
        type: 'tenant.moved',
        message: `Tenant moved from node ${fromName} to node ${toName} with ${sites.length} site(s)`,
        data: { jobId: job.id, fromNodeId: params.fromNodeId, toNodeId: to, sites: sites.map((s) => s.id) },
        actorKeyId: params.actorKeyId,
      });
      this.logger.log(`job ${job.id}: tenant ${job.tenantId} moved from ${fromName} to ${toName}`);
    } catch (e) {
      let message = (e as Error).message;
      // A lost lock: another worker runs the job again from where it is (its params say).
      if (steps.interrupted) {
        await this.jobs.publish(
          await this.prisma.job.update({ where: { id: job.id }, data: { status: JobStatus.QUEUED, error: message } }),
        );
        throw e;
      }
      if (!(e instanceof LeftoversError)) message = await this.moveBack(job, sites, steps, message);
      await this.jobs.publish(
        await this.prisma.job.update({ where: { id: job.id }, data: { status: JobStatus.FAILED, error: message, finishedAt: new Date() } }),
      );
      await this.events.record({
        tenantId: job.tenantId,
        type: 'tenant.move.failed',
        message: `Moving the tenant off node ${await this.nodes.hostname(params.fromNodeId)} failed: ${message}`,
        data: { jobId: job.id },
        actorKeyId: params.actorKeyId,
      });
      this.logger.warn(`job ${job.id} (MOVE_TENANT) failed: ${message}`);
      // Moved back (or moved, with leftovers): another attempt would start over, not go on.
      throw new UnrecoverableError(message);
    }
  }

  /** The move's steps; returns the node the tenant is on now. */
  private async move(job: Job, sites: Site[], steps: StepRecorder): Promise<string> {
    const params = await this.params(job.id);
    const from = params.fromNodeId;
    const to =
      params.toNodeId ??
      (await steps.run(
        'choose a node',
        async () => {
          const id = await this.nodes.placeMove(job.tenantId, from);
          await this.saveParams(job.id, { toNodeId: id });
          return id;
        },
        (id) => `node ${id} has the most room`,
      ));
    const toName = await this.nodes.hostname(to);
    const carried = sites.filter(carriedOver);
    const checkpoints = new Map<string, Backup>();
    const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: job.tenantId } });
    if (!params.applied) {
      // Where the tenant is until its objects are applied on the new node.
      const before: Tenant = { ...tenant, nodeId: from };
      for (const site of carried) {
        const cp = await this.backups.checkpointForMove(job, before, site, params.checkpoints?.[site.id], steps);
        checkpoints.set(site.id, cp);
        await this.saveParams(job.id, { checkpoints: Object.fromEntries([...checkpoints].map(([id, b]) => [id, b.id])) });
      }
      // The sites not carried (not made yet, or on their way out) must not run on the old node
      // either, or it could not be cleared: their next job makes (or removes) them.
      for (const site of sites.filter((s) => !carriedOver(s)))
        await steps.run(`stop ${site.name}`, (signal) =>
          this.engine.stopWordPress(names.wpContainer(this.config.BERTH_INSTANCE, tenant.slug, site.name), signal).then(() => undefined),
        );
      await this.saveParams(job.id, { applied: true });
    } else {
      for (const site of carried) {
        const id = params.checkpoints?.[site.id];
        const cp = id ? await this.prisma.backup.findUnique({ where: { id } }) : null;
        if (!cp?.snapshotId) throw new Error(`the checkpoint of site ${site.name} an earlier attempt took is gone`);
        checkpoints.set(site.id, cp);
      }
    }
    const moved = await this.prisma.tenant.findUniqueOrThrow({ where: { id: job.tenantId } });
    // A tenant none of whose sites was ever made has no objects: it is only booked elsewhere.
    if (carried.length > 0 || (await this.engine.hasDatabaseServer(moved.slug))) {
      const rootPassword = this.planner.tenantFacts(moved).dbRootPassword;
      await steps.run(
        `database server on ${toName}`,
        (signal) => this.engine.applyTenant(moved.id, this.planner.tenantPlan(moved), signal),
        (r) => r.join('; ') || 'unchanged',
      );
      await steps.run('wait for database server', (signal) => this.engine.waitForDatabase(moved.slug, rootPassword, signal));
    }
    for (const site of carried) await this.backups.moveIn(job, moved, site, checkpoints.get(site.id) as Backup, steps);
    try {
      await steps.run(
        `remove what is left on ${await this.nodes.hostname(from)}`,
        (signal) => this.engine.clearNode(moved.slug, from, signal),
        (r) => r.join('; ') || 'nothing left',
      );
    } catch (e) {
      throw new LeftoversError(
        `the tenant runs on node ${toName}, but what it left on its old node was not all removed: ${(e as Error).message}`,
      );
    }
    return to;
  }

  /**
   * After a failure before the tenant ran on the new node: the tenant's row names the old node
   * again, its objects are applied there (where its volumes still are) and each site is brought
   * up as its row says; then what was made on the new node is removed. Returns the job's error.
   */
  private async moveBack(job: Job, sites: Site[], steps: StepRecorder, why: string): Promise<string> {
    const params = await this.params(job.id);
    if (!params.toNodeId) return `${why}; nothing was changed`;
    try {
      await this.prisma.tenant.update({ where: { id: job.tenantId }, data: { nodeId: params.fromNodeId } });
      const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: job.tenantId } });
      if (params.applied && (await this.engine.hasDatabaseServer(tenant.slug)))
        await steps.run('move back: database server', (signal) =>
          this.engine.applyTenant(tenant.id, this.planner.tenantPlan(tenant), signal).then(() => undefined),
        );
      for (const s of sites.filter(carriedOver)) {
        const site = await this.prisma.site.findUniqueOrThrow({ where: { id: s.id } });
        await this.runner.converge({ ...job, siteId: site.id, generation: site.generation }, tenant, site, steps);
      }
      if (params.applied)
        await steps.run('move back: remove what was made on the new node', (signal) =>
          this.engine.clearNode(tenant.slug, params.toNodeId as string, signal),
        );
      return `${why}; the tenant was moved back to its node and its sites brought up as they were`;
    } catch (e) {
      return `${why}; moving the tenant back failed too: ${(e as Error).message} (its data is still on node ${params.fromNodeId}; evacuate again to retry)`;
    }
  }

  private async params(jobId: string): Promise<TenantMoveParams> {
    return (await this.prisma.job.findUniqueOrThrow({ where: { id: jobId }, select: { params: true } }))
      .params as unknown as TenantMoveParams;
  }

  private async saveParams(jobId: string, more: Partial<TenantMoveParams>): Promise<void> {
    const params = { ...(await this.params(jobId)), ...more };
    await this.prisma.job.update({ where: { id: jobId }, data: { params: params as unknown as Prisma.InputJsonValue } });
  }
}

/**
 * The sites a move carries over: those made and not on their way out. A site not made yet, or
 * whose making failed before WordPress was installed, has nothing to carry: its next job makes
 * it on the tenant's new node.
 */
function carriedOver(site: Site): boolean {
  if (site.desiredState === DesiredState.ABSENT) return false;
  if (site.status === SiteStatus.FAILED) return site.installedAt !== null;
  return site.status === SiteStatus.RUNNING || site.status === SiteStatus.STOPPED || site.status === SiteStatus.RESTORING;
}
