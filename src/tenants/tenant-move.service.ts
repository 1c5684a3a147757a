import { Inject, Injectable, Logger } from '@nestjs/common';
import { DelayedError, UnrecoverableError, type Job as BullJob } from 'bullmq';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Backup, Job, Prisma, Site, Tenant } from '../generated/prisma/client';
import { BackupKind, BackupStatus, DesiredState, JobKind, JobStatus, SiteStatus } from '../generated/prisma/enums';
import { BackupRunner, type RestoreJobParams } from '../backups/backup-runner.service';
import { BACKUP_PARTS } from '../backups/backup-engine';
import { EventsService } from '../events/events.service';
import { JobsService } from '../jobs/jobs.service';
import { mergeJobParams } from '../jobs/job-params';
import { SupersededError } from '../jobs/generation';
import { HUNG_STEP_RELEASE_MS, STOP_GRACE_MS, StepRecorder } from '../jobs/step-recorder';
import { RedisService, type Lock } from '../redis/redis.service';
import { releasing } from '../redis/lock';
import { names } from '../sites/site-plan';
import { SitePlanner } from '../sites/site-planner';
import { SiteRunner } from '../sites/site-runner.service';
import { SiteStatusWriter } from '../sites/site-status';
import { SwarmSiteEngine } from '../sites/swarm-site-engine';
import { NodesService, type TenantMoveParams } from '../nodes/nodes.service';

const ACTIVE: JobStatus[] = [JobStatus.QUEUED, JobStatus.RUNNING];
/** How long a move waits, off the worker, for a site job of the tenant to end before it looks again. */
const SITES_POLL_MS = 1000;
/** Steps a move records per site it carries (checkpoint: 2; put back: about 6; bring up: about 6). */
const STEPS_PER_SITE = 14;
/** How long after a failed try a move's leftovers are tried again. */
const LEFTOVERS_RETRY_MS = 5 * 60_000;
/** How long the sweep waits for a running container of the tenant on that node to stop. */
const LEFTOVERS_STOP_WAIT_MS = 10_000;

/** How a move ended: on the new node (with what went wrong there, if anything), or back where it was. */
type Ended = { moved: true; to: string; detail: string; problems: string[] } | { moved: false; error: string };

/**
 * Moves a tenant to another Swarm node (an evacuation: POST /v1/nodes/{id}/evacuate), as a
 * MOVE_TENANT job. A tenant's volumes are local to its node and Swarm moves no data, so the
 * move goes through backup and restore, as an operator would by hand:
 *
 * 1. choose the node with the most room (and book it: the tenant's row names it);
 * 2. for each site: RESTORING (not probed), WordPress stopped, a checkpoint taken where it is;
 * 3. the tenant's database server applied on the new node (a fresh volume), then each site's
 *    objects there and its checkpoint put back, WordPress still stopped;
 * 4. committed: every site's content is on the new node. Each site is brought up there as its
 *    row says (the same service names: its domains and edge routes do not change);
 * 5. last, the tenant's containers and volumes on the old node removed.
 *
 * Until step 4 nothing has written on the new node and the old node keeps everything: a
 * failure moves the tenant back there (its sites brought up as they were; what was made on
 * the new node removed), and the job fails saying so. From step 4 on the move only goes
 * forward: a site that does not come up is FAILED on the new node, with its content there and
 * in its checkpoint. The job's params record each decision, so an attempt that lost its locks
 * (or a worker that died) is taken up where it was, forward or back. While a move is queued or
 * running the tenant's site jobs wait for it (SiteWorker), the reconciler leaves its sites
 * alone, and the move holds every site's lock while it works.
 */
@Injectable()
export class TenantMoveService {
  private readonly logger = new Logger('TenantMove');
  private clearing = false;

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
    private readonly status: SiteStatusWriter,
  ) {}

  /**
   * Whether the tenant has a move queued or running: its sites' jobs wait until it has ended.
   * Queued counts too: between two attempts of a move (a lost lock) its sites are half moved.
   */
  async moving(tenantId: string): Promise<boolean> {
    return (await this.prisma.job.count({ where: { tenantId, kind: JobKind.MOVE_TENANT, status: { in: ACTIVE } } })) > 0;
  }

  /**
   * Removes what moves left behind, as their own last step would have: a move that ended
   * FAILED after its commit, whose old node was not all cleared (a node down at the time, a
   * container that would not stop); or one moved back whose objects on the new node were not.
   * Never an evacuation from backups: what it left on the dead node is newer than the backups
   * (and holds any site that had none), so it is kept for the operator. Only the newest move
   * of a tenant, and only while the tenant's row names the node that move left it on (the
   * tenant's data is there): its leftovers are then copies, in each site's checkpoint too. Holds the tenant's lock and every site's lock, as a move does, so
   * that no move or site job runs beside it; a node that is down waits until it is back. Each
   * worker's sweep calls it; returns how many moves' leftovers it removed.
   */
  async clearLeftovers(): Promise<number> {
    if (this.config.BERTH_ENGINE !== 'swarm' || this.clearing) return 0;
    this.clearing = true;
    try {
      return await this.clearEachLeftovers();
    } finally {
      this.clearing = false;
    }
  }

  private async clearEachLeftovers(): Promise<number> {
    // Only what can be acted on now: the tenant on the node the move left it on (a deleted
    // tenant, or one whose row was not put back, never matches), not waiting out a retry.
    const rows = await this.prisma.$queryRaw<{ id: string; tenantId: string }[]>`
      SELECT j.id, j."tenantId" FROM "Job" j JOIN "Tenant" t ON t.id = j."tenantId"
      WHERE j."siteId" IS NULL AND j.kind = 'MOVE_TENANT' AND j.status IN ('FAILED', 'SUCCEEDED')
        AND j."createdAt" > now() - interval '30 days'
        AND j.params->>'leftoversCleared' IS NULL AND j.params->>'cleared' IS NULL AND j.params->>'fromBackups' IS NULL
        AND ((j.params->>'committed' = 'true' AND t."nodeId" = j.params->>'toNodeId')
          OR (j.params->>'committed' IS NULL AND j.params->>'applied' = 'true' AND t."nodeId" = j.params->>'fromNodeId'))
        AND coalesce((j.params->>'leftoversRetryAt')::bigint, 0) <= ${Date.now()}
        AND NOT EXISTS (
          SELECT 1 FROM "Job" n
          WHERE n."siteId" IS NULL AND n."tenantId" = j."tenantId" AND n.kind = 'MOVE_TENANT' AND n."createdAt" > j."createdAt"
        )
      ORDER BY j."createdAt"
      LIMIT 10`;
    let cleared = 0;
    for (const row of rows) {
      try {
        if (await this.clearLeftoversOf(row.id, row.tenantId)) cleared += 1;
      } catch (e) {
        // Every worker process sees the retry: the tenant's sites are not locked again before then.
        await this.saveParams(row.id, { leftoversRetryAt: Date.now() + LEFTOVERS_RETRY_MS }).catch(() => undefined);
        this.logger.warn(`job ${row.id}: what the move left behind is not removed yet: ${(e as Error).message}`);
      }
    }
    return cleared;
  }

  private async clearLeftoversOf(jobId: string, tenantId: string): Promise<boolean> {
    const active = { tenantId, kind: { in: [JobKind.MOVE_TENANT, JobKind.DELETE_TENANT] }, status: { in: ACTIVE } };
    // A node still down is looked at again at the next sweep, without locking anything.
    const first = await this.params(jobId);
    if (!(await this.engine.nodeReachable(first.committed ? first.fromNodeId : (first.toNodeId ?? first.fromNodeId)))) {
      // Out of the next sweeps' ten until then, so other moves' leftovers are not starved.
      await this.saveParams(jobId, { leftoversRetryAt: Date.now() + LEFTOVERS_RETRY_MS });
      return false;
    }
    const locks: Lock[] = [];
    try {
      const tenantLock = await this.redis.tryLock(`berth:lock:tenant:${tenantId}`, this.config.BERTH_LOCK_TTL_MS);
      if (!tenantLock) return false;
      locks.push(tenantLock);
      for (const site of await this.liveSites(tenantId)) {
        const lock = await this.redis.tryLock(`berth:lock:site:${site.id}`, this.config.BERTH_LOCK_TTL_MS);
        if (!lock) return false; // a job of that site is running: the next sweep
        locks.push(lock);
      }
      // Read under the locks: another process may have cleared it meanwhile, and a tenant moved
      // (or being deleted) since is not this move's to clear.
      const params = await this.params(jobId);
      if (params.leftoversCleared || params.cleared) return false;
      const [left, home] = params.committed ? [params.fromNodeId, params.toNodeId] : [params.toNodeId, params.fromNodeId];
      const tenant = await this.prisma.tenant.findUnique({ where: { id: tenantId }, select: { slug: true, nodeId: true } });
      if (!left || !home || !tenant || tenant.nodeId !== home || (await this.prisma.job.count({ where: active })) > 0) return false;
      // A container that does not stop is not waited for long: the sites are locked meanwhile.
      const signal = AbortSignal.any([...locks.map((l) => l.signal), AbortSignal.timeout(this.config.BERTH_STEP_TIMEOUT_MS)]);
      const removed = await this.engine.clearNode(tenant.slug, left, signal, LEFTOVERS_STOP_WAIT_MS);
      await this.saveParams(jobId, { leftoversCleared: true });
      const leftName = await this.nodes.hostname(left);
      await this.events.record({
        tenantId,
        type: 'tenant.move.cleared',
        message: `What the tenant's move left on node ${leftName} was removed: ${removed.join('; ') || 'nothing was left'}`,
        data: { jobId, nodeId: left, removed },
      });
      this.logger.log(`job ${jobId}: what the move left on node ${leftName} was removed`);
      return true;
    } finally {
      await Promise.all(locks.map((l) => l.release()));
    }
  }

  async process(bull: BullJob<{ jobId: string }>, token?: string): Promise<void> {
    const row = await this.prisma.job.findUnique({ where: { id: bull.data.jobId } });
    if (!row || !ACTIVE.includes(row.status)) return;
    const fresh = row.status === JobStatus.QUEUED;
    const started = await this.prisma.job.update({
      where: { id: row.id },
      data: { status: JobStatus.RUNNING, error: null, ...(fresh ? { attempts: { increment: 1 }, startedAt: new Date() } : {}) },
    });
    if (fresh) await this.jobs.publish(started);
    const sites = await this.liveSites(row.tenantId);
    const locks: Lock[] = [];
    const later = async (): Promise<never> => {
      await Promise.all(locks.map((l) => l.release()));
      await bull.moveToDelayed(Date.now() + SITES_POLL_MS, token);
      throw new DelayedError();
    };
    // An earlier move of the tenant (one heading to the node this one leaves) ends first.
    const earlier = await this.prisma.job.count({
      where: {
        tenantId: row.tenantId,
        kind: JobKind.MOVE_TENANT,
        status: { in: ACTIVE },
        OR: [{ createdAt: { lt: row.createdAt } }, { createdAt: row.createdAt, id: { lt: row.id } }],
      },
    });
    if (earlier > 0) return later();
    for (const site of sites) {
      const lock = await this.redis.tryLock(`berth:lock:site:${site.id}`, this.config.BERTH_LOCK_TTL_MS).catch(releasing(...locks));
      // A job of that site is running: the move waits for it, off the worker.
      if (!lock) return later();
      locks.push(lock);
    }
    // A site made (or deleted for good) while the locks were taken: its lock too, next time.
    const now = await this.liveSites(row.tenantId).catch(releasing(...locks));
    if (now.map((s) => s.id).join() !== sites.map((s) => s.id).join()) return later();
    const steps = new StepRecorder(
      3 + now.length * STEPS_PER_SITE,
      this.config.BERTH_STEP_TIMEOUT_MS,
      async (list, progress) => {
        await this.jobs.publish(
          await this.prisma.job.update({ where: { id: row.id }, data: { steps: list as unknown as Prisma.InputJsonValue, progress } }),
        );
      },
      async () => {
        for (const l of locks) await l.verify();
      },
      { signal: AbortSignal.any(locks.map((l) => l.signal)), stopGraceMs: STOP_GRACE_MS },
    );
    try {
      await this.execute(started, now, steps, bull.attemptsMade + 1 >= (bull.opts.attempts ?? 1));
    } finally {
      // A step that did not stop when told to keeps the sites locked until it has stopped,
      // so the next attempt (or a site's next job) never runs beside it.
      if (steps.stopping) {
        this.logger.warn(`job ${row.id}: a step is still stopping; the tenant's sites stay locked until it has`);
        void steps
          .idle(HUNG_STEP_RELEASE_MS)
          .then((stopped) => {
            if (!stopped)
              this.logger.error(
                `job ${row.id}: a step has not stopped ${HUNG_STEP_RELEASE_MS / 60_000} min after it was told to (an engine call that does not return?); the tenant's sites are let go`,
              );
          })
          .finally(() => Promise.all(locks.map((l) => l.release())))
          .catch(() => undefined);
      } else await Promise.all(locks.map((l) => l.release()));
    }
  }

  private async execute(job: Job, sites: Site[], steps: StepRecorder, lastAttempt: boolean): Promise<void> {
    let ended: Ended;
    try {
      const params = await this.params(job.id);
      ended = params.movingBack ? await this.moveBack(job, sites, steps, params.movingBack) : await this.forward(job, sites, steps);
    } catch (e) {
      // The locks were lost, or a step that timed out is still running: nothing more is done
      // beside it; the next attempt takes the move up (forward, or back) once it has stopped.
      if (steps.interrupted) return this.requeue(job, e);
      // The last attempt waits for it (the sites still locked), then fails as any other would.
      if (steps.stopping) {
        if (!lastAttempt) return this.requeue(job, e);
        // Not for ever: a call that never returns would leave the move RUNNING for good.
        if (!(await steps.idle(HUNG_STEP_RELEASE_MS)))
          this.logger.error(
            `job ${job.id}: a step has not stopped ${HUNG_STEP_RELEASE_MS / 60_000} min after it was told to (an engine call that does not return?); the move ends without it`,
          );
      }
      const why = (e as Error).message;
      const params = await this.params(job.id);
      // From backups, nothing on the old node is at stake: tried forward again while attempts remain.
      if (params.fromBackups && !params.committed && !lastAttempt) return this.requeue(job, e);
      if (params.committed) {
        // Every site's content is on the new node: the move goes on there, in another attempt.
        if (!lastAttempt) return this.requeue(job, e);
        ended = await this.givenUp(job, sites, params, why);
      } else {
        try {
          ended = await this.moveBack(job, sites, steps, why);
        } catch (again) {
          if (steps.interrupted || steps.stopping) return this.requeue(job, again);
          throw again;
        }
      }
    }
    // Outside the move's try: a failure to record its end is retried (the params say what is
    // done), and never moves back a tenant whose old node is cleared.
    await this.finish(job, sites, ended);
  }

  /**
   * The last attempt failed after the commit: the tenant stays on its new node, and each
   * carried site still being moved is FAILED there with why (its content is in its checkpoint).
   * A site already dealt with is left as it is: up, FAILED with its own reason, or overtaken by
   * a newer request (still RESTORING: its own job, waiting for the move, applies that request).
   */
  private async givenUp(job: Job, sites: Site[], params: TenantMoveParams, why: string): Promise<Ended> {
    const problems = [`the move stopped: ${why}`];
    const dealt = params.broughtUp ?? {};
    for (const s of this.carriedOf(params, sites)) {
      if (s.id in dealt) continue;
      const site = await this.prisma.site.findUniqueOrThrow({ where: { id: s.id } });
      if (site.status !== SiteStatus.RESTORING) continue;
      const failed = `moving it to its new node did not finish: ${why}`;
      await this.status.set(site, { status: SiteStatus.FAILED, lastError: failed }, site.generation).catch(() => undefined);
      problems.push(`site ${site.name} is FAILED`);
    }
    const to = params.toNodeId as string;
    return { moved: true, to, detail: `the tenant's sites are on node ${await this.nodes.hostname(to)}`, problems };
  }

  /** The locks were lost: another attempt takes the move up where its params say (forward or back). */
  private async requeue(job: Job, e: unknown): Promise<never> {
    await this.jobs.publish(
      await this.prisma.job.update({ where: { id: job.id }, data: { status: JobStatus.QUEUED, error: (e as Error).message } }),
    );
    throw e;
  }

  private async finish(job: Job, sites: Site[], ended: Ended): Promise<void> {
    const params = await this.params(job.id);
    const fromName = await this.nodes.hostname(params.fromNodeId);
    if (ended.moved && ended.problems.length === 0) {
      await this.jobs.publish(
        await this.prisma.job.update({
          where: { id: job.id },
          data: { status: JobStatus.SUCCEEDED, progress: 100, finishedAt: new Date(), error: null },
        }),
      );
      await this.events.record({
        tenantId: job.tenantId,
        type: 'tenant.moved',
        message: `Tenant moved from node ${fromName} to node ${await this.nodes.hostname(ended.to)}: ${ended.detail}`,
        data: { jobId: job.id, fromNodeId: params.fromNodeId, toNodeId: ended.to, sites: sites.map((s) => s.id) },
        actorKeyId: params.actorKeyId,
      });
      this.logger.log(`job ${job.id}: tenant ${job.tenantId} moved: ${ended.detail}`);
      return;
    }
    const message = ended.moved ? `${ended.detail}, but ${ended.problems.join('; ')}` : ended.error;
    await this.jobs.publish(
      await this.prisma.job.update({ where: { id: job.id }, data: { status: JobStatus.FAILED, error: message, finishedAt: new Date() } }),
    );
    await this.events.record({
      tenantId: job.tenantId,
      type: 'tenant.move.failed',
      message: `Moving the tenant off node ${fromName} failed: ${message}`,
      data: { jobId: job.id },
      actorKeyId: params.actorKeyId,
    });
    this.logger.warn(`job ${job.id} (MOVE_TENANT) failed: ${message}`);
    // Moved back, or moved with problems: another attempt would start over, not go on.
    throw new UnrecoverableError(message);
  }

  /** The move's steps, from where the params say an earlier attempt got to. */
  private async forward(job: Job, sites: Site[], steps: StepRecorder): Promise<Ended> {
    const params = await this.params(job.id);
    const from = params.fromNodeId;
    const carried = await this.carry(job.id, params, sites);
    if (params.cleared) return { moved: true, to: params.toNodeId as string, detail: `${carried.length} site(s) moved`, problems: [] };
    const booked = await this.prisma.tenant.findUniqueOrThrow({ where: { id: job.tenantId } });
    // Moved already (another evacuation's move of it ended first): nothing to do.
    if (!params.toNodeId && booked.nodeId !== from) {
      await steps.record(
        'nothing to move',
        `the tenant is on node ${booked.nodeId ? await this.nodes.hostname(booked.nodeId) : 'none'} now`,
      );
      return { moved: true, to: booked.nodeId ?? from, detail: 'it had left the node already', problems: [] };
    }
    const to =
      params.toNodeId ??
      (await steps.run(
        'choose a node',
        () => this.nodes.placeMove(job.tenantId, from, job.id),
        (id) => `node ${id} has the most room`,
      ));
    const toName = await this.nodes.hostname(to);
    const checkpoints = params.applied ? await this.checkpointsTaken(params, carried) : await this.leave(job, sites, carried, steps);
    const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: job.tenantId } });
    if (tenant.nodeId !== to) throw new Error(`the tenant's row names node ${tenant.nodeId}, not ${to}, the node it moves to`);
    if (!params.committed) {
      // A tenant none of whose sites was ever made has no objects: it is only booked elsewhere.
      if (carried.length > 0 || (await this.engine.hasDatabaseServer(tenant.slug))) {
        await steps.run(
          `database server on ${toName}`,
          (signal) => this.engine.applyTenant(tenant.id, this.planner.tenantPlan(tenant), signal),
          (r) => r.join('; ') || 'unchanged',
        );
        const rootPassword = this.planner.tenantFacts(tenant).dbRootPassword;
        await steps.run('wait for database server', (signal) => this.engine.waitForDatabase(tenant.slug, rootPassword, signal));
      }
      const done = new Set((await this.params(job.id)).putBack ?? []);
      for (const site of carried.filter((s) => !done.has(s.id))) {
        await this.backups.putBackForMove(job, tenant, site, checkpoints.get(site.id) as Backup, steps);
        done.add(site.id);
        await this.saveParams(job.id, { putBack: [...done] });
      }
      await this.saveParams(job.id, { committed: true });
    }
    // Committed: the sites come up on the new node; one that does not is FAILED there (its
    // content is there, and in its checkpoint), and the others are not moved back for it.
    // Each site once: an attempt that follows (a lost lock) skips those dealt with already.
    const dealt: Record<string, string | null> = { ...(await this.params(job.id)).broughtUp };
    for (const s of carried.filter((x) => !(x.id in dealt))) {
      const site = await this.prisma.site.findUniqueOrThrow({ where: { id: s.id } });
      // Being deleted: its deletion job, waiting for the move, removes it from the new node.
      if (site.desiredState !== DesiredState.ABSENT) {
        try {
          await this.backups.bringUpMoved(job, tenant, site, checkpoints.get(site.id) as Backup, steps);
          dealt[site.id] = null;
        } catch (e) {
          if (steps.interrupted || steps.stopping) throw e;
          // A newer request of the site came meanwhile: its job, waiting for the move, applies it.
          if (e instanceof SupersededError) dealt[site.id] = null;
          else {
            dealt[site.id] = `site ${site.name} did not come up: ${(e as Error).message}`;
            const now = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id } });
            await this.status.set(now, { status: SiteStatus.FAILED, lastError: dealt[site.id] }, now.generation).catch(() => undefined);
          }
        }
      } else dealt[site.id] = null;
      await this.saveParams(job.id, { broughtUp: { ...dealt } });
    }
    const problems = Object.values(dealt).filter((x): x is string => x !== null);
    const fromName = await this.nodes.hostname(from);
    const detail = `the tenant runs on node ${toName} with ${carried.length} site(s)`;
    if (params.fromBackups) {
      // Moved from backups: what is on the old node is newer than the backups (and holds any
      // site that had none). Kept for the operator, even if the node is back by now.
      await steps.record(
        `what is left on ${fromName}`,
        'kept: it holds what each site changed since its backup, and any site that had none',
      );
      return { moved: true, to, detail, problems };
    }
    try {
      await steps.run(
        `remove what is left on ${fromName}`,
        (signal) => this.engine.clearNode(tenant.slug, from, signal),
        (r) => r.join('; ') || 'nothing left',
      );
    } catch (e) {
      if (steps.interrupted) throw e;
      problems.push(`what it left on node ${fromName} was not all removed: ${(e as Error).message}`);
    }
    if (!problems.length) await this.saveParams(job.id, { cleared: true });
    return { moved: true, to, detail, problems };
  }

  /**
   * The move's first half, on the old node: each carried site stopped and checkpointed (one an
   * earlier attempt took is reused), the sites not carried stopped too (or the node could not
   * be cleared: their next job makes, or removes, them on the new node).
   */
  private async leave(job: Job, sites: Site[], carried: Site[], steps: StepRecorder): Promise<Map<string, Backup>> {
    const params = await this.params(job.id);
    if (params.fromBackups) return this.fromLatestBackups(job, params, carried, steps);
    const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: job.tenantId } });
    // Where the tenant is until its objects are applied on the new node.
    const before: Tenant = { ...tenant, nodeId: params.fromNodeId };
    const checkpoints = new Map<string, Backup>();
    for (const site of [...carried]) {
      try {
        checkpoints.set(site.id, await this.backups.checkpointForMove(job, before, site, params.checkpoints?.[site.id], steps));
      } catch (e) {
        const now = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id } });
        // A site being deleted whose content cannot be read (its deletion had begun) is not
        // carried: its deletion removes what is left. Any other site's failure moves the tenant back.
        if (steps.interrupted || now.desiredState !== DesiredState.ABSENT) throw e;
        carried.splice(carried.indexOf(site), 1);
        await this.saveParams(job.id, { carried: carried.map((s) => s.id) });
        await steps.record(`${site.name} not carried`, `it is being deleted, and its checkpoint failed: ${(e as Error).message}`);
        continue;
      }
      await this.saveParams(job.id, { checkpoints: Object.fromEntries([...checkpoints].map(([id, b]) => [id, b.id])) });
    }
    for (const site of sites.filter((s) => !carried.includes(s)))
      await steps.run(`stop ${site.name}`, (signal) =>
        this.engine.stopWordPress(names.wpContainer(this.config.BERTH_INSTANCE, tenant.slug, site.name), signal).then(() => undefined),
      );
    await this.saveParams(job.id, { applied: true });
    return checkpoints;
  }

  /**
   * The node is down (an evacuation from backups): each carried site's latest whole backup
   * stands for its checkpoint, chosen once (an attempt that follows takes the same one). A site
   * with none is FAILED and not carried: nothing of it can be had. Nothing is read or stopped on
   * the node.
   */
  private async fromLatestBackups(job: Job, params: TenantMoveParams, carried: Site[], steps: StepRecorder): Promise<Map<string, Backup>> {
    const fromName = await this.nodes.hostname(params.fromNodeId);
    const chosen: Record<string, string> = { ...params.checkpoints };
    const checkpoints = new Map<string, Backup>();
    for (const site of [...carried]) {
      const latest = chosen[site.id]
        ? { backup: await this.prisma.backup.findUnique({ where: { id: chosen[site.id] } }) }
        : await this.latestState(site.id);
      const backup = latest.backup;
      const fresh = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id } });
      if (backup?.status !== BackupStatus.SUCCEEDED || !backup.snapshotId) {
        const why = `its node ${fromName} is down and ${latest.why ?? 'it has no backup to be moved from'}`;
        // FAILED first: an attempt that dies in between leaves no site RUNNING that is not carried.
        await this.status.set(fresh, { status: SiteStatus.FAILED, lastError: why }, fresh.generation).catch(() => undefined);
        carried.splice(carried.indexOf(site), 1);
        await this.saveParams(job.id, { carried: carried.map((s) => s.id) });
        await steps.record(`${site.name} not carried`, why);
        continue;
      }
      await this.status.set(fresh, { status: SiteStatus.RESTORING }, fresh.generation);
      await steps.record(
        `latest backup of ${site.name}`,
        `backup ${backup.id}, taken ${(backup.finishedAt ?? backup.createdAt).toISOString()}: what changed since is lost`,
      );
      checkpoints.set(site.id, backup);
      chosen[site.id] = backup.id;
      await this.saveParams(job.id, { checkpoints: chosen });
    }
    await this.saveParams(job.id, { applied: true });
    return checkpoints;
  }

  /**
   * The site's latest whole backup that holds its state as it was. A restore's checkpoint (the
   * state before it) is passed over once that restore succeeded: the site then held what the
   * restore put back. With no backup taken since, that is the restore's own source when it put
   * back all of this site's backup; after a push, or a restore of one part, no single backup
   * holds it, and none is chosen (`why` says so) rather than an older one, which would undo the
   * owner's restore without a word.
   */
  private async latestState(siteId: string): Promise<{ backup: Backup | null; why?: string }> {
    const candidates = await this.prisma.backup.findMany({
      where: { siteId, status: BackupStatus.SUCCEEDED, snapshotId: { not: null } },
      orderBy: [{ finishedAt: 'desc' }, { createdAt: 'desc' }],
      take: 20,
    });
    for (const b of candidates) {
      if (b.kind !== BackupKind.CHECKPOINT || !b.jobId) return { backup: b };
      const by = await this.prisma.job.findUnique({ where: { id: b.jobId }, select: { kind: true, status: true, params: true } });
      if (by?.kind !== JobKind.RESTORE || by.status !== JobStatus.SUCCEEDED) return { backup: b };
      const restored = by.params as unknown as RestoreJobParams;
      const whole = !restored.parts?.length || BACKUP_PARTS.every((p) => restored.parts.includes(p));
      const source = await this.prisma.backup.findUnique({ where: { id: restored.backupId } });
      if (whole && !restored.pushFrom && source?.siteId === siteId && source.status === BackupStatus.SUCCEEDED && source.snapshotId)
        return { backup: source };
      return {
        backup: null,
        why: `no backup holds what its last ${restored.pushFrom ? 'push' : 'restore'} put back (none was taken since)`,
      };
    }
    return { backup: null };
  }

  /** The checkpoints an earlier attempt took: each must be whole, or there is nothing to put back. */
  private async checkpointsTaken(params: TenantMoveParams, carried: Site[]): Promise<Map<string, Backup>> {
    const checkpoints = new Map<string, Backup>();
    for (const site of carried) {
      const id = params.checkpoints?.[site.id];
      const cp = id ? await this.prisma.backup.findUnique({ where: { id } }) : null;
      if (cp?.status !== BackupStatus.SUCCEEDED || !cp.snapshotId)
        throw new Error(`the checkpoint of site ${site.name} an earlier attempt took is ${cp ? cp.status.toLowerCase() : 'gone'}`);
      checkpoints.set(site.id, cp);
    }
    return checkpoints;
  }

  /**
   * After a failure before the move was committed (nothing has written on the new node): the
   * tenant's row names the old node again, its objects are applied there (where its volumes
   * still are) and each site is brought up as its row says; then what was made on the new node
   * is removed. `why` is kept in the params first, so an attempt that dies here is taken up by
   * the next one moving back, never forward.
   */
  private async moveBack(job: Job, sites: Site[], steps: StepRecorder, why: string): Promise<Ended> {
    await this.saveParams(job.id, { movingBack: why });
    const params = await this.params(job.id);
    // The node is chosen and booked in one transaction with the params: no node, nothing booked.
    if (!params.toNodeId) return { moved: false, error: `${why}; nothing was changed` };
    const to = params.toNodeId;
    const problems: string[] = [];
    try {
      await this.prisma.tenant.update({ where: { id: job.tenantId }, data: { nodeId: params.fromNodeId } });
      const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: job.tenantId } });
      if (params.applied && (await this.engine.hasDatabaseServer(tenant.slug))) {
        await steps.run('move back: database server', (signal) =>
          this.engine.applyTenant(tenant.id, this.planner.tenantPlan(tenant), signal).then(() => undefined),
        );
      }
      for (const s of this.carriedOf(params, sites)) {
        const site = await this.prisma.site.findUniqueOrThrow({ where: { id: s.id } });
        // Being deleted: its deletion job, waiting for the move, removes it where it is.
        if (site.desiredState === DesiredState.ABSENT) continue;
        try {
          await this.runner.converge({ ...job, siteId: site.id, generation: site.generation }, tenant, site, steps);
        } catch (e) {
          if (steps.interrupted || steps.stopping) throw e;
          const failed = `site ${site.name} did not come back up: ${(e as Error).message}`;
          problems.push(failed);
          const now = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id } });
          await this.status.set(now, { status: SiteStatus.FAILED, lastError: failed }, now.generation).catch(() => undefined);
        }
      }
      if (params.applied) {
        const back = await this.prisma.tenant.findUniqueOrThrow({ where: { id: job.tenantId }, select: { nodeId: true } });
        if (back.nodeId === to) throw new Error(`the tenant's row names node ${to} again: it is not cleared`);
        await steps.run('move back: remove what was made on the new node', (signal) => this.engine.clearNode(tenant.slug, to, signal));
        await this.saveParams(job.id, { cleared: true });
      }
    } catch (e) {
      if (steps.interrupted || steps.stopping) throw e;
      problems.push(`moving the tenant back failed: ${(e as Error).message}`);
    }
    if (problems.length)
      return {
        moved: false,
        error: `${why}; ${problems.join('; ')} (its data is still on node ${await this.nodes.hostname(params.fromNodeId)}, and in each site's checkpoint)`,
      };
    return { moved: false, error: `${why}; the tenant was moved back to its node and its sites brought up as they were` };
  }

  /** The sites the move carries: fixed (in its params) by the first attempt that asks. */
  private async carry(jobId: string, params: TenantMoveParams, sites: Site[]): Promise<Site[]> {
    if (params.carried) return this.carriedOf(params, sites);
    const carried = sites.filter(carriedOver);
    await this.saveParams(jobId, { carried: carried.map((s) => s.id) });
    return carried;
  }

  /** The sites the params say the move carries (those an older job's params do not name: as they are now). */
  private carriedOf(params: TenantMoveParams, sites: Site[]): Site[] {
    if (!params.carried) return sites.filter(carriedOver);
    const ids = new Set(params.carried);
    return sites.filter((s) => ids.has(s.id));
  }

  /** The tenant's sites not deleted, in a stable order (their locks are taken in it). */
  private liveSites(tenantId: string): Promise<Site[]> {
    return this.prisma.site.findMany({ where: { tenantId, status: { not: SiteStatus.DELETED } }, orderBy: { name: 'asc' } });
  }

  private async params(jobId: string): Promise<TenantMoveParams> {
    return (await this.prisma.job.findUniqueOrThrow({ where: { id: jobId }, select: { params: true } }))
      .params as unknown as TenantMoveParams;
  }

  private async saveParams(jobId: string, more: Partial<TenantMoveParams>): Promise<void> {
    if (!(await mergeJobParams(this.prisma, jobId, more))) throw new Error(`job ${jobId} is gone: its progress could not be saved`);
  }
}

/**
 * The sites a move carries over: those made. A site whose deletion is queued is carried too
 * (put back on the new node, not brought up there): were its deletion cancelled, it would
 * have lost nothing. A site not made yet, or whose making failed before WordPress was
 * installed, has nothing to carry: its next job makes it on the tenant's new node; nor has one
 * whose deletion failed (what is left of it is removed by the next).
 */
function carriedOver(site: Site): boolean {
  if (site.status === SiteStatus.FAILED) return site.installedAt !== null && site.desiredState !== DesiredState.ABSENT;
  // Its deletion asked for (and waiting for the move, or cut short): made, it is carried.
  if (site.status === SiteStatus.DELETING) return site.installedAt !== null;
  return site.status === SiteStatus.RUNNING || site.status === SiteStatus.STOPPED || site.status === SiteStatus.RESTORING;
}
