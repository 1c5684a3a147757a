import { Inject, Injectable, Logger } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Site } from '../generated/prisma/client';
import { JobStatus, SiteStatus } from '../generated/prisma/enums';
import { DockerService, type SwarmNode } from '../docker/docker.service';
import { NodeEngines } from '../docker/node-engines';
import { LABEL, MANAGED_BY, type Plan } from '../docker/plan.types';
import type Docker from 'dockerode';
import { EventsService } from '../events/events.service';
import { JobsService } from '../jobs/jobs.service';
import { RedisService } from '../redis/redis.service';
import { names, outdatedNames } from '../sites/site-plan';
import { EdgeService, PRIMARY_DOMAIN } from '../edge/edge.service';
import { SitePlanner } from '../sites/site-planner';
import { SiteStatusWriter } from '../sites/site-status';
import type { EngineView } from '../docker/plan-drift';
import { rolloutOf } from './rollout';
import { swarmView } from './swarm-view';
import { reconcileSites, type SitePassPorts, type SiteWithTenant } from './site-pass';
import { tenantNodes } from '../nodes/tenant-nodes';
import { claimed, type ClaimedObject, type ClaimFacts } from './orphan-claims';

const ORPHANS = 'berth:reconcile:orphans';
/** How long a pass waits for one node's engine to list its volumes. */
const NODE_LIST_TIMEOUT_MS = 5000;
/** The configuration whose rollout is halted (and was reported so), if any. */
const HALTED = 'berth:reconcile:rollout-halted';

/** A rollout repair that failed, with the configuration it was rolling out. */
interface RolloutFailure {
  jobId: string;
  siteId: string;
  tenantId: string;
  siteName: string;
  error: string | null;
  rollout: string;
}

/**
 * Compares what the database says each site should be with what the Docker Engine has
 * (found by Berth's labels) and, where they differ and no job is in flight, enqueues a
 * repair job: the same idempotent apply the API's jobs use. Objects labelled as Berth's
 * that nothing claims are removed after a grace period, and reported.
 */
@Injectable()
export class ReconcilerService {
  private readonly logger = new Logger('Reconciler');
  private timer?: NodeJS.Timeout;
  private pending?: NodeJS.Timeout;

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly docker: DockerService,
    private readonly redis: RedisService,
    private readonly jobs: JobsService,
    private readonly events: EventsService,
    private readonly planner: SitePlanner,
    private readonly status: SiteStatusWriter,
    private readonly edge: EdgeService,
    private readonly metrics: MetricsService,
    private readonly nodeEngines: NodeEngines,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.soon(0), this.config.BERTH_RECONCILE_INTERVAL_MS);
    this.timer.unref();
    this.soon(1000);
  }

  /**
   * Refuses to run over objects an earlier version made for this (non-default) instance under
   * names without the instance: jobs would make the sites again, empty, beside their data.
   */
  async assertCurrentNames(): Promise<void> {
    const labels = { [LABEL.managedBy]: MANAGED_BY, [LABEL.instance]: this.config.BERTH_INSTANCE };
    const [containers, volumes] = await Promise.all([this.docker.listContainers(labels), this.docker.listVolumes(labels)]);
    const outdated = outdatedNames(this.config.BERTH_INSTANCE, [
      ...containers.map((c) => c.Names[0]?.replace(/^\//, '') ?? c.Id),
      ...volumes.map((v) => v.Name),
    ]);
    if (outdated.length === 0) return;
    throw new Error(
      `BERTH_INSTANCE=${this.config.BERTH_INSTANCE}: the Docker Engine holds ${outdated.length} object(s) of this instance under names of an earlier Berth ` +
        `(${outdated.slice(0, 3).join(', ')}${outdated.length > 3 ? ', ...' : ''}); this version names them ${names.dbContainer(this.config.BERTH_INSTANCE, '<tenant>')} and so on. ` +
        'Refusing to start the workers rather than make those sites again beside their data: move the data to the new names first (see README, Upgrading).',
    );
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.pending);
  }

  /** Asks for a pass shortly; bursts of Docker events collapse into one. */
  soon(delayMs = 1000): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.reconcileAll().catch((e: Error) => this.logger.warn(`pass failed: ${e.message}`));
    }, delayMs);
    this.pending.unref();
  }

  /** One pass over every site, by one worker at a time; returns the repairs it enqueued. */
  async reconcileAll(): Promise<string[]> {
    const lock = await this.redis.tryLock('berth:lock:reconcile', Math.max(30_000, this.config.BERTH_LOCK_TTL_MS));
    if (!lock) return [];
    const end = this.metrics.reconcileDuration.startTimer();
    let result = 'failed';
    try {
      const labels = { [LABEL.managedBy]: MANAGED_BY, [LABEL.instance]: this.config.BERTH_INSTANCE };
      // A job that finishes after this moment may have changed what the pass reads next.
      const seenSince = new Date();
      const engine = this.config.BERTH_ENGINE === 'swarm' ? await this.swarmSeen(labels) : await this.engineSeen(labels);
      const all = await sitesToReconcile(this.prisma);
      const sites = all.filter(engine.reachable);
      const active = await this.prisma.job.findMany({
        where: { status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] } },
        select: { siteId: true, tenantId: true, params: true },
      });
      const busy = new Set(active.map((j) => j.siteId));
      // A job of a whole tenant (a move to another node, a deletion) owns all of its sites:
      // a repair meanwhile would make them where the tenant is not (yet, or any more).
      const busyTenants = new Set(active.filter((j) => !j.siteId).map((j) => j.tenantId));
      const failures = await this.unresolvedRolloutFailures();
      const fingerprint = this.planner.settingsFingerprint;
      const halt = failures.find((f) => f.rollout === fingerprint);
      await this.reportHalt(fingerprint, halt);
      // A site whose rollout repair failed under an earlier configuration is tried again.
      const retry = new Set(failures.filter((f) => f.rollout !== fingerprint).map((f) => f.siteId));
      const rollout = {
        batch: this.config.BERTH_ROLLOUT_BATCH,
        inFlight: active.filter((j) => rolloutOf(j.params)).length,
        halted: !!halt,
      };
      const repaired = await reconcileSites(
        sites.filter((s) => !busy.has(s.id) && !busyTenants.has(s.tenantId)),
        engine.seen,
        rollout,
        this.passPorts(seenSince),
        retry,
      );
      // Every site claims its objects, those the pass cannot reach too (a node down).
      await engine.collectOrphans(all);
      this.metrics.reconcileRepairs.inc(repaired.length);
      result = 'ok';
      return repaired;
    } finally {
      end({ result });
      await lock.release();
    }
  }

  /** What one engine has (one list call per kind covers every site), and its orphans collected after the pass. */
  private async engineSeen(labels: Record<string, string>): Promise<PassView> {
    const [containers, networks, volumes] = await Promise.all([
      this.docker.listContainers(labels),
      this.docker.listNetworks(labels),
      this.docker.listVolumes(labels),
    ]);
    return {
      seen: engineView(containers, networks, volumes),
      reachable: () => true,
      // Containers go first: volumes and networks in use cannot be removed.
      collectOrphans: (sites) =>
        this.collectOrphans(sites, [
          ...containers.map((c) => ({
            key: `container:${c.Id}`,
            name: c.Names[0] ?? c.Id,
            labels: c.Labels,
            remove: () => this.docker.removeContainer(c.Id),
          })),
          ...volumes.map((v) => ({
            key: `volume:${v.Name}`,
            name: v.Name,
            labels: v.Labels,
            remove: () => this.docker.removeVolume(v.Name),
          })),
          ...networks.map((n) => this.networkObject(n)),
        ]),
    };
  }

  private networkObject(n: { Id: string; Name: string; Labels?: Record<string, string> }): BerthObject {
    return { key: `network:${n.Id}`, name: n.Name, labels: n.Labels, remove: () => this.docker.removeNetwork(n.Id) };
  }

  /**
   * What a Swarm has: the manager's services (their spec hash, their network, whether they
   * should run) and overlay networks. Not compared there: volumes (Swarm makes each on its
   * node when its task first starts) and whether a task runs right now (Swarm restarts tasks
   * itself; the probes and the node watch report an outage). Sites of a tenant whose node is
   * not ready are left alone: a repair cannot reach them, and their node coming back brings
   * them back. Orphans collected: services, their secrets and overlay networks, through the
   * manager, and the volumes on each ready node, through its own engine (the manager lists
   * no node's volumes).
   */
  private async swarmSeen(labels: Record<string, string>): Promise<PassView> {
    const [services, networks, secrets, nodes] = await Promise.all([
      this.docker.listServices(labels),
      this.docker.listNetworks(labels),
      this.docker.listSecrets(labels),
      this.docker.listNodes(),
    ]);
    const ready = new Set(nodes.filter((n) => n.Status.State === 'ready').map((n) => n.ID));
    const volumes = await Promise.all(nodes.filter((n) => ready.has(n.ID)).map((n) => this.nodeVolumes(n, labels)));
    return {
      seen: swarmView(services, networks),
      reachable: (s) => !!s.tenant.nodeId && ready.has(s.tenant.nodeId),
      // Services go first: a secret or network a service uses cannot be removed (the network
      // is free once the service's tasks have gone: a later pass removes it).
      collectOrphans: (sites) =>
        this.collectOrphans(sites, [
          ...services.map((v) => ({
            key: `service:${v.ID}`,
            name: v.Spec?.Name ?? v.ID,
            labels: v.Spec?.Labels,
            remove: () => this.docker.removeService(v.ID),
          })),
          ...secrets.map((v) => ({
            key: `secret:${v.ID}`,
            name: v.Spec?.Name ?? v.ID,
            labels: v.Spec?.Labels,
            remove: () => this.docker.removeSecret(v.ID),
          })),
          ...volumes.flat(),
          ...networks.map((n) => this.networkObject(n)),
        ]),
    };
  }

  /**
   * Berth's volumes on one node, through its own engine; none (and a warning) when it cannot be
   * asked in NODE_LIST_TIMEOUT_MS: a node that has just died is still "ready" for a while, and
   * a connection to it would hold the pass for minutes.
   */
  private async nodeVolumes(node: SwarmNode, labels: Record<string, string>): Promise<BerthObject[]> {
    try {
      const engine = this.nodeEngines.engineOf(node.ID, node);
      return (await engine.listVolumes(labels, AbortSignal.timeout(NODE_LIST_TIMEOUT_MS))).map((v) => ({
        key: `volume:${node.ID}:${v.Name}`,
        name: `${v.Name} on node ${node.Description.Hostname}`,
        nodeId: node.ID,
        createdAt: (v as { CreatedAt?: string }).CreatedAt,
        labels: v.Labels,
        remove: () => engine.removeVolume(v.Name),
      }));
    } catch (e) {
      this.logger.warn(`volumes of node ${node.Description.Hostname} not listed: ${(e as Error).message}`);
      return [];
    }
  }

  /** What a pass does to each site, through this service's adapters (one pass's: its tenants' plans are kept for it). */
  private passPorts(seenSince: Date): SitePassPorts {
    const tenantPlans = new Map<string, Plan>();
    return {
      ...this.ports,
      expectedPlan: (site) => this.planner.expectedPlan(site.tenant, site, tenantPlans),
      settingsKnown: (site) => this.config.BERTH_ENGINE === 'swarm' || !!site.hostPort,
      repair: (site, reason, rollout) => this.repair(site, reason, rollout ? this.planner.settingsFingerprint : undefined, seenSince),
    };
  }

  private readonly ports: Omit<SitePassPorts, 'expectedPlan' | 'repair'> = {
    publicUrl: (site) => this.edge.wordpressUrl(site, site.tenant, site.domains?.[0]?.hostname),
    recordProblem: async (site, message, error) => {
      // Written only while no request has moved the site on since this pass read it.
      await this.status.set(site, { lastError: message }, site.generation).catch(() => undefined);
      await this.events.record({
        tenantId: site.tenantId,
        siteId: site.id,
        type: 'site.reconcile.failed',
        message: `Site ${site.name} could not be reconciled: ${error.message}`,
        data: { error: error.message },
      });
    },
    warn: (message) => this.logger.warn(message),
  };

  /**
   * Rollout repairs that failed and whose site has had no job since (nobody retried it),
   * oldest first; `rollout` names the configuration each was rolling out.
   */
  private async unresolvedRolloutFailures(): Promise<RolloutFailure[]> {
    return this.prisma.$queryRaw<RolloutFailure[]>`
      SELECT j.id AS "jobId", j."siteId", j."tenantId", s.name AS "siteName", j.error, j.params->>'rollout' AS rollout
      FROM "Job" j JOIN "Site" s ON s.id = j."siteId"
      WHERE j.kind = 'REPAIR' AND j.status = 'FAILED' AND j.params->>'rollout' IS NOT NULL AND s.status = 'FAILED'
        AND NOT EXISTS (SELECT 1 FROM "Job" k WHERE k."siteId" = j."siteId" AND k."createdAt" > j."createdAt")
      ORDER BY j."finishedAt" ASC`;
  }

  /** One event each time the rollout of a configuration halts (not on every pass while it stays halted). */
  private async reportHalt(fingerprint: string, f: RolloutFailure | undefined): Promise<void> {
    const was = await this.redis.client.get(HALTED);
    if (!f) {
      if (was) await this.redis.client.del(HALTED);
      return;
    }
    if (was === fingerprint) return;
    this.logger.warn(`rollout halted at site ${f.siteId}: ${f.error}`);
    await this.events.record({
      tenantId: f.tenantId,
      siteId: f.siteId,
      type: 'rollout.halted',
      message: `Rollout of a configuration change halted at site ${f.siteName}: ${f.error ?? 'its repair failed'}. Sites not yet updated keep their containers; the rollout resumes when the configuration changes again or the site is retried (start).`,
      data: { jobId: f.jobId, siteId: f.siteId, error: f.error, configuration: f.rollout },
    });
    await this.redis.client.set(HALTED, fingerprint);
  }

  /** Enqueues a repair (or the unfinished deletion) unless a job got there first (or finished since the pass began). */
  private async repair(site: Site, reason: string, rollout: string | undefined, seenSince: Date): Promise<boolean> {
    const job = await this.jobs.repair(site, reason, rollout, seenSince);
    if (job) this.logger.log(`site ${site.id}: ${reason}; repair job ${job.id}`);
    return job !== undefined;
  }

  /** Removes, after the grace period, Berth-labelled objects that no tenant or live site claims (in the order given). */
  private async collectOrphans(sites: SiteWithTenant[], objects: BerthObject[]): Promise<void> {
    const tenants = await this.prisma.tenant.findMany({ select: { slug: true, id: true, nodeId: true, createdAt: true } });
    const facts: ClaimFacts = {
      liveSites: new Set(sites.map((s) => s.id)),
      tenants: new Map(tenants.map((t) => [t.slug, t])),
      // Only on a Swarm, where volumes are on nodes.
      tenantNodes: objects.some((o) => o.nodeId) ? await tenantNodes(this.prisma) : undefined,
    };
    const candidates = objects.filter((o) => !claimed(o, facts));
    const seen = await this.redis.client.hgetall(ORPHANS);
    const now = Date.now();
    const current = new Set(candidates.map((c) => c.key));
    const forgotten = Object.keys(seen).filter((k) => !current.has(k));
    if (forgotten.length) await this.redis.client.hdel(ORPHANS, ...forgotten);
    for (const c of candidates) {
      const first = Number(seen[c.key] ?? 0);
      if (!first) {
        await this.redis.client.hset(ORPHANS, c.key, String(now));
        if (this.config.BERTH_ORPHAN_GRACE_MS > 0) continue;
      } else if (now - first < this.config.BERTH_ORPHAN_GRACE_MS) continue;
      try {
        await c.remove();
        await this.redis.client.hdel(ORPHANS, c.key);
        await this.events.record({
          type: 'orphan.removed',
          message: `Removed ${c.key.split(':')[0]} ${c.name.replace(/^\//, '')}: labelled as Berth's but claimed by no site`,
          data: { object: c.key, labels: c.labels ?? {} },
        });
      } catch (e) {
        this.logger.warn(`could not remove orphan ${c.key}: ${(e as Error).message}`);
      }
    }
  }
}

/** What the Engine's list calls say of Berth's objects, reduced to what a plan decides. */
export function engineView(
  containers: Pick<Docker.ContainerInfo, 'Id' | 'Names' | 'State' | 'Labels' | 'NetworkSettings'>[],
  networks: Pick<Docker.NetworkInspectInfo, 'Name' | 'Id'>[],
  volumes: Pick<Docker.VolumeInspectInfo, 'Name'>[],
): EngineView {
  return {
    networks: new Map(networks.map((n) => [n.Name, n.Id])),
    volumes: new Set(volumes.map((v) => v.Name)),
    containers: new Map(
      containers.map((c) => [
        c.Names[0]?.replace(/^\//, '') ?? c.Id,
        {
          state: c.State,
          labels: c.Labels,
          networks: Object.fromEntries(Object.entries(c.NetworkSettings?.Networks ?? {}).map(([name, n]) => [name, n.NetworkID])),
        },
      ]),
    ),
  };
}

/** An object of Berth's on the engine, as orphan collection sees it. */
interface BerthObject extends ClaimedObject {
  /** kind:id, such as container:4f0e… or service:x1y2… */
  key: string;
  name: string;
  remove: () => Promise<void>;
}

/** What a pass compares the plans with, which sites it can reach, and what it does after. */
interface PassView {
  seen: EngineView;
  reachable: (site: SiteWithTenant) => boolean;
  collectOrphans: (sites: SiteWithTenant[]) => Promise<void>;
}

/**
 * Every site a pass looks at, with its tenant and primary domain. Three flat queries joined
 * here: Prisma's nested include of the tenant took half of a pass's CPU at 10,000 sites.
 */
export async function sitesToReconcile(prisma: PrismaService): Promise<SiteWithTenant[]> {
  const [sites, tenants, domains] = await Promise.all([
    prisma.site.findMany({ where: { status: { not: SiteStatus.DELETED } }, orderBy: { createdAt: 'asc' } }),
    prisma.tenant.findMany(),
    prisma.domain.findMany({
      where: PRIMARY_DOMAIN.where,
      select: { siteId: true, ...PRIMARY_DOMAIN.select },
      orderBy: { createdAt: 'asc' },
    }),
  ]);
  const tenantOf = new Map(tenants.map((t) => [t.id, t]));
  // One primary domain a site (the oldest, should there ever be two).
  const domainOf = new Map<string, { hostname: string }[]>();
  for (const d of domains) if (!domainOf.has(d.siteId)) domainOf.set(d.siteId, [{ hostname: d.hostname }]);
  return sites.flatMap((s) => {
    const tenant = tenantOf.get(s.tenantId);
    return tenant ? [{ ...s, tenant, domains: domainOf.get(s.id) ?? [] }] : [];
  });
}
