import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Job, Site, Tenant } from '../generated/prisma/client';
import { DesiredState, Health, JobKind, SiteStatus } from '../generated/prisma/enums';
import { SecretBox, sha256 } from '../common/crypto';
import { ApplyService, type ApplyReport } from '../docker/apply.service';
import { DockerService } from '../docker/docker.service';
import { emptyPlan, LABEL, type Plan } from '../docker/plan.types';
import { RedisService } from '../redis/redis.service';
import { EventsService } from '../events/events.service';
import { StepRecorder } from '../jobs/step-recorder';
import { guarded, rollbackOf, SupersededError, supersededBy } from '../jobs/generation';
import { MonitorService } from '../monitor/monitor.service';
import { SiteHealthService } from '../monitor/site-health.service';
import {
  imageWithTag,
  names,
  planSite,
  planTenant,
  stableStringify,
  type PlanSettings,
  type SiteFacts,
  type TenantFacts,
} from './site-plan';
import { createSiteDatabaseSql, dropSiteDatabaseSql, runSql, waitForDatabase } from './site-database';
import { siteChannel, siteUrl } from './site-urls';
import { setTimeout as delay } from 'node:timers/promises';

/** The settings an update changes, kept on the job so a failed update can be rolled back. */
export const UPDATABLE = ['env', 'restartPolicy', 'memoryMb', 'cpus', 'imageTag'] as const;
export type SiteSettings = Pick<Site, (typeof UPDATABLE)[number]>;

/** An update whose new container failed and whose previous settings were restored. */
export class RolledBackError extends Error {}

type StatusFields = Partial<Pick<Site, 'status' | 'hostPort' | 'lastError' | 'liveName' | 'deletedAt' | 'health'>>;

/** Applies a site's desired state to the Docker Engine: the one thing jobs do. */
@Injectable()
export class SiteRunner {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly docker: DockerService,
    private readonly applier: ApplyService,
    private readonly redis: RedisService,
    private readonly events: EventsService,
    private readonly box: SecretBox,
    private readonly monitor: MonitorService,
    private readonly health: SiteHealthService,
  ) {}

  get settings(): PlanSettings {
    const c = this.config;
    return {
      instance: c.BERTH_INSTANCE,
      wordpressImage: c.BERTH_WORDPRESS_IMAGE,
      dbImage: c.BERTH_DB_IMAGE,
      wordpressDataPath: c.BERTH_WORDPRESS_DATA_PATH,
      publishAddress: c.BERTH_PUBLISH_ADDRESS,
      subnetPool: c.BERTH_SUBNET_POOL,
      subnetPrefix: c.BERTH_SUBNET_PREFIX,
      pidsLimit: c.BERTH_PIDS_LIMIT,
      dbMemoryMb: c.BERTH_DB_MEMORY_MB,
      dbCpus: c.BERTH_DB_CPUS,
    };
  }

  /** The tenant as the plan sees it, without decrypting anything: enough to compare. */
  sealedTenantFacts(t: Tenant): TenantFacts {
    return {
      slug: t.slug,
      networkIndex: t.networkIndex,
      dbRootPasswordSealed: t.dbRootPasswordEnc,
      maxMemoryMb: t.maxMemoryMb,
      maxCpus: t.maxCpus,
    };
  }

  /** The tenant with its root password opened, for jobs; throws if it cannot be opened. */
  tenantFacts(t: Tenant): TenantFacts & { dbRootPassword: string } {
    return { ...this.sealedTenantFacts(t), dbRootPassword: this.box.open(t.dbRootPasswordEnc) };
  }

  sealedSiteFacts(s: Site): SiteFacts {
    return {
      id: s.id,
      name: s.name,
      env: s.env as Record<string, string>,
      restartPolicy: s.restartPolicy,
      memoryMb: s.memoryMb,
      cpus: s.cpus,
      dbName: s.dbName,
      dbUser: s.dbUser,
      dbPasswordSealed: s.dbPasswordEnc,
      hostPort: s.hostPort ?? 0,
      image: s.imageTag ? imageWithTag(this.config.BERTH_WORDPRESS_IMAGE, s.imageTag) : undefined,
      running: s.desiredState === DesiredState.RUNNING,
    };
  }

  siteFacts(s: Site): SiteFacts & { dbPassword: string } {
    return { ...this.sealedSiteFacts(s), dbPassword: this.box.open(s.dbPasswordEnc) };
  }

  /** The plans and scope of one site, as the jobs apply them (secrets opened). */
  plans(tenant: Tenant, site: Site): { tenant: Plan; site: Plan; scope: Record<string, string> } {
    const t = this.tenantFacts(tenant);
    return {
      tenant: planTenant(t, this.settings),
      site: planSite(t, this.siteFacts(site), this.settings),
      scope: { [LABEL.instance]: this.config.BERTH_INSTANCE, [LABEL.tenant]: tenant.slug, [LABEL.siteId]: site.id },
    };
  }

  /**
   * The spec hash the site's WordPress container should carry: the same as the jobs' plan
   * gives, computed from sealed secrets, so an unreadable secret cannot stop the reconciler.
   */
  expectedSpecHash(tenant: Tenant, site: Site): string {
    return planSite(this.sealedTenantFacts(tenant), this.sealedSiteFacts(site), this.settings).containers[0].create.Labels[LABEL.specHash];
  }

  /** Names the plan settings: a fleet-wide change (image, limits, address) changes it. */
  get settingsFingerprint(): string {
    return sha256(stableStringify(this.settings)).slice(0, 16);
  }

  /**
   * Writes a job's outcome to the site, only while the site's generation is still the job's:
   * a job that a newer request overtook writes nothing and gets a {@link SupersededError}.
   */
  async setStatus(site: Pick<Site, 'id'>, data: StatusFields, generation: number): Promise<void> {
    const done = await this.prisma.site.updateMany(guarded(site.id, { generation, data }));
    if (done.count === 0) throw await this.superseded(site.id, generation);
    await this.redis.publish(siteChannel(site.id), { id: site.id }).catch(() => undefined);
  }

  private async superseded(siteId: string, generation: number, failure?: (siteGeneration: number) => string): Promise<SupersededError> {
    const now = await this.prisma.site.findUnique({ where: { id: siteId }, select: { generation: true } });
    const siteGeneration = now?.generation ?? generation + 1;
    return new SupersededError(siteGeneration, generation, failure?.(siteGeneration));
  }

  /**
   * Runs the steps that bring the site to its desired state; throws on failure. A job whose
   * generation is no longer the site's throws {@link SupersededError} before it changes
   * anything more (the worker also checks between steps).
   */
  async run(job: Job, steps: StepRecorder): Promise<SiteStatus> {
    if (!job.siteId) throw new Error(`job ${job.id} (${job.kind}) has no site to apply`);
    const site = await this.prisma.site.findUniqueOrThrow({ where: { id: job.siteId } });
    const newer = supersededBy(job.generation, site.generation);
    if (newer !== undefined) throw new SupersededError(newer, job.generation);
    const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: site.tenantId } });
    if (site.desiredState === DesiredState.ABSENT) return this.remove(job, tenant, site, steps);
    if (job.kind === JobKind.PROVISION && site.status !== SiteStatus.RUNNING)
      await this.setStatus(site, { status: SiteStatus.PROVISIONING }, job.generation);
    try {
      return await this.converge(job, tenant, site, steps);
    } catch (e) {
      const rollback = rollbackOf(job);
      // Superseded, or stopped because the lock was lost: the site is someone else's to apply now.
      if (!rollback || e instanceof SupersededError || steps.interrupted) throw e;
      // The previous settings come back only if no newer request replaced the failed one's.
      const message = (e as Error).message;
      const done = await this.prisma.site.updateMany(guarded(site.id, rollback));
      if (done.count === 0)
        throw await this.superseded(
          site.id,
          job.generation,
          (n) => `update failed: ${message}; not rolled back: generation ${n} was requested since and stays`,
        );
      const restored = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id } });
      await steps.run('roll back to the previous settings', () => this.converge(job, tenant, restored, steps));
      await this.setStatus(site, { lastError: `update rolled back: ${message}` }, job.generation);
      throw new RolledBackError(`update failed and was rolled back: ${message}`);
    }
  }

  private async converge(job: Job, tenant: Tenant, site: Site, steps: StepRecorder): Promise<SiteStatus> {
    const t = this.tenantFacts(tenant);
    const dbContainer = names.dbContainer(this.config.BERTH_INSTANCE, tenant.slug);
    await steps.run(
      'tenant network and database server',
      (signal) => this.applyTenant(tenant.id, planTenant(t, this.settings), signal),
      (r) => r.join('; ') || 'unchanged',
    );
    site = { ...site, hostPort: await this.reserveHostPort(site) };
    const { site: plan, scope } = this.plans(tenant, site);
    const report = await steps.run(
      'site volume and WordPress container',
      (signal) => this.applySite(site.id, plan, scope, signal),
      (r) => r.changes.join('; ') || 'unchanged',
    );
    const wp = report.containers[names.wpContainer(this.config.BERTH_INSTANCE, tenant.slug, site.name)];
    await steps.run('wait for database server', (signal) =>
      waitForDatabase(this.docker, dbContainer, t.dbRootPassword, this.config.BERTH_STEP_TIMEOUT_MS, signal),
    );
    await steps.run('site database and user', (signal) =>
      fenced(signal, () => runSql(this.docker, dbContainer, t.dbRootPassword, createSiteDatabaseSql(this.siteFacts(site)))),
    );

    if (site.desiredState === DesiredState.STOPPED) {
      await this.setStatus(site, { status: SiteStatus.STOPPED, lastError: null, health: Health.UNKNOWN }, job.generation);
      await this.monitor.unwatch(site.id);
      return SiteStatus.STOPPED;
    }
    if (job.kind === JobKind.RESTART && !restartedBy(report)) {
      await steps.run('restart WordPress container', (signal) => fenced(signal, () => this.docker.restartContainer(wp.Id)));
    }
    const port = await steps.run(
      'wait for HTTP',
      (signal) => this.waitForHttp(wp.Name.replace(/^\//, ''), signal),
      (p) => `answering on port ${p}`,
    );
    await this.setStatus(site, { status: SiteStatus.RUNNING, hostPort: port, lastError: null }, job.generation);
    await this.health.transition(site.id, Health.UP, 'answered HTTP after the job');
    await this.monitor.settled(site.id, Date.now() + this.config.BERTH_PROBE_INTERVAL_MS);
    return SiteStatus.RUNNING;
  }

  private async remove(job: Job, tenant: Tenant, site: Site, steps: StepRecorder): Promise<SiteStatus> {
    const t = this.tenantFacts(tenant);
    const dbContainer = names.dbContainer(this.config.BERTH_INSTANCE, tenant.slug);
    const { scope } = this.plans(tenant, site);
    await steps.run(
      'tenant network and database server',
      (signal) => this.applyTenant(tenant.id, planTenant(t, this.settings), signal),
      (r) => r.join('; ') || 'unchanged',
    );
    await steps.run(
      'remove containers and volume',
      (signal) => this.applier.apply(emptyPlan(), scope, signal),
      (r) => r.changes.join('; ') || 'nothing left',
    );
    await steps.run('wait for database server', (signal) =>
      waitForDatabase(this.docker, dbContainer, t.dbRootPassword, this.config.BERTH_STEP_TIMEOUT_MS, signal),
    );
    await steps.run('drop database and user', (signal) =>
      fenced(signal, () => runSql(this.docker, dbContainer, t.dbRootPassword, dropSiteDatabaseSql(site))),
    );
    await this.setStatus(
      site,
      { status: SiteStatus.DELETED, liveName: null, deletedAt: new Date(), hostPort: null, lastError: null, health: Health.UNKNOWN },
      job.generation,
    );
    await this.monitor.unwatch(site.id);
    await this.events.record({ tenantId: site.tenantId, siteId: site.id, type: 'site.deleted', message: `Site ${site.name} deleted` });
    return SiteStatus.DELETED;
  }

  /**
   * Reserves a host port for the site once, from BERTH_PORT_RANGE, so its URL survives
   * restarts and replacements. The unique index settles races between workers.
   */
  private async reserveHostPort(site: Site): Promise<number> {
    if (site.hostPort) return site.hostPort;
    const [lo, hi] = this.config.BERTH_PORT_RANGE;
    for (let i = 0; i < 50; i++) {
      const port = lo + Math.floor(Math.random() * (hi - lo + 1));
      await this.prisma.site.updateMany({ where: { id: site.id, hostPort: null }, data: { hostPort: port } }).catch(() => undefined);
      const now = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id }, select: { hostPort: true } });
      if (now.hostPort) return now.hostPort;
    }
    throw new Error(`no free host port found in ${lo}-${hi}`);
  }

  /** A port something else on the host holds is given up, so the next attempt takes another. */
  private async applySite(siteId: string, plan: Plan, scope: Record<string, string>, signal?: AbortSignal): Promise<ApplyReport> {
    try {
      return await this.applier.apply(plan, scope, signal);
    } catch (e) {
      if (/port is already allocated|address already in use/i.test((e as Error).message)) {
        await this.prisma.site.update({ where: { id: siteId }, data: { hostPort: null } });
      }
      throw e;
    }
  }

  /** The tenant's shared objects, applied by one worker at a time per tenant. */
  private async applyTenant(tenantId: string, plan: Plan, signal?: AbortSignal): Promise<string[]> {
    const lock = await this.redis.lock(
      `berth:lock:tenant:${tenantId}`,
      this.config.BERTH_STEP_TIMEOUT_MS,
      this.config.BERTH_LOCK_TTL_MS,
      signal,
    );
    try {
      return (await this.applier.apply(plan, undefined, signal ? AbortSignal.any([signal, lock.signal]) : lock.signal)).changes;
    } finally {
      await lock.release();
    }
  }

  /** Waits until the published port answers HTTP (any status below 500); returns the port. */
  private async waitForHttp(container: string, signal?: AbortSignal): Promise<number> {
    const deadline = Date.now() + this.config.BERTH_HTTP_READY_TIMEOUT_MS;
    let last: string;
    for (;;) {
      signal?.throwIfAborted();
      const info = await this.docker.inspectContainer(container);
      const port = Number(info?.NetworkSettings.Ports?.['80/tcp']?.[0]?.HostPort ?? 0);
      if (port && info?.State.Running) {
        const url = siteUrl(this.config.BERTH_PUBLISH_ADDRESS, port) as string;
        try {
          const res = await fetch(url, {
            redirect: 'manual',
            signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(3000)]) : AbortSignal.timeout(3000),
          });
          await res.arrayBuffer();
          if (res.status < 500) return port;
          last = `HTTP ${res.status}`;
        } catch (e) {
          signal?.throwIfAborted();
          last = (e as Error).message;
        }
      } else {
        last = `container is ${info?.State.Status ?? 'missing'}`;
      }
      if (Date.now() > deadline) throw new Error(`site did not answer HTTP within ${this.config.BERTH_HTTP_READY_TIMEOUT_MS} ms: ${last}`);
      await delay(250, undefined, { signal });
    }
  }
}

/** Runs a Docker change only while the step may still act (not timed out, lock still held). */
async function fenced<T>(signal: AbortSignal, change: () => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  return change();
}

/**
 * waitForDatabase with the step's signal as its last argument: h-init's version takes it;
 * until that is merged the extra argument is ignored (the step's timeout still bounds it).
 */

const restartedBy = (report: ApplyReport) => report.changes.some((c) => c.includes('started') || c.includes('created'));
