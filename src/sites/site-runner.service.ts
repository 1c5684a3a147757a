import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Job, Prisma, Site, Tenant } from '../generated/prisma/client';
import { DesiredState, Health, JobKind, SiteStatus } from '../generated/prisma/enums';
import { SecretBox } from '../common/crypto';
import { ApplyService, type ApplyReport } from '../docker/apply.service';
import { DockerService } from '../docker/docker.service';
import { emptyPlan, LABEL, type Plan } from '../docker/plan.types';
import { RedisService } from '../redis/redis.service';
import { EventsService } from '../events/events.service';
import { StepRecorder } from '../jobs/step-recorder';
import { MonitorService } from '../monitor/monitor.service';
import { SiteHealthService } from '../monitor/site-health.service';
import { imageWithTag, names, planSite, planTenant, type PlanSettings, type SiteFacts, type TenantFacts } from './site-plan';
import { createSiteDatabaseSql, dropSiteDatabaseSql, runSql, waitForDatabase } from './site-database';
import { siteChannel, siteUrl } from './site-urls';

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

  tenantFacts(t: Tenant): TenantFacts {
    return { slug: t.slug, networkIndex: t.networkIndex, dbRootPassword: this.box.open(t.dbRootPasswordEnc), maxMemoryMb: t.maxMemoryMb, maxCpus: t.maxCpus };
  }

  siteFacts(s: Site): SiteFacts {
    return {
      id: s.id, name: s.name, env: s.env as Record<string, string>, restartPolicy: s.restartPolicy,
      memoryMb: s.memoryMb, cpus: s.cpus, dbName: s.dbName, dbUser: s.dbUser,
      dbPassword: this.box.open(s.dbPasswordEnc), hostPort: s.hostPort ?? 0,
      image: s.imageTag ? imageWithTag(this.config.BERTH_WORDPRESS_IMAGE, s.imageTag) : undefined,
      running: s.desiredState === DesiredState.RUNNING,
    };
  }

  /** The plans and scope of one site, as the reconciler and the jobs both see them. */
  plans(tenant: Tenant, site: Site): { tenant: Plan; site: Plan; scope: Record<string, string> } {
    const t = this.tenantFacts(tenant);
    return {
      tenant: planTenant(t, this.settings),
      site: planSite(t, this.siteFacts(site), this.settings),
      scope: { [LABEL.instance]: this.config.BERTH_INSTANCE, [LABEL.tenant]: tenant.slug, [LABEL.siteId]: site.id },
    };
  }

  async setStatus(site: Pick<Site, 'id'>, data: StatusFields): Promise<Site> {
    const updated = await this.prisma.site.update({ where: { id: site.id }, data });
    await this.redis.publish(siteChannel(site.id), { id: site.id }).catch(() => undefined);
    return updated;
  }

  /** Runs the steps that bring the site to its desired state; throws on failure. */
  async run(job: Job, steps: StepRecorder): Promise<SiteStatus> {
    if (!job.siteId) throw new Error(`job ${job.id} (${job.kind}) has no site to apply`);
    const site = await this.prisma.site.findUniqueOrThrow({ where: { id: job.siteId } });
    const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: site.tenantId } });
    if (site.desiredState === DesiredState.ABSENT) return this.remove(tenant, site, steps);
    if (job.kind === JobKind.PROVISION && site.status !== SiteStatus.RUNNING) await this.setStatus(site, { status: SiteStatus.PROVISIONING });
    try {
      return await this.converge(job, tenant, site, steps);
    } catch (e) {
      const previous = (job.params as { previous?: SiteSettings }).previous;
      if (job.kind !== JobKind.UPDATE || !previous) throw e;
      const restored = await this.prisma.site.update({ where: { id: site.id }, data: previous as Prisma.SiteUpdateInput });
      await steps.run('roll back to the previous settings', () => this.converge(job, tenant, restored, steps));
      await this.setStatus(site, { lastError: `update rolled back: ${(e as Error).message}` });
      throw new RolledBackError(`update failed and was rolled back: ${(e as Error).message}`);
    }
  }

  private async converge(job: Job, tenant: Tenant, site: Site, steps: StepRecorder): Promise<SiteStatus> {
    const t = this.tenantFacts(tenant);
    const dbContainer = names.dbContainer(tenant.slug);
    await steps.run('tenant network and database server', () => this.applyTenant(tenant.id, planTenant(t, this.settings)), (r) => r.join('; ') || 'unchanged');
    site = { ...site, hostPort: await this.reserveHostPort(site) };
    const { site: plan, scope } = this.plans(tenant, site);
    const report = await steps.run('site volume and WordPress container', () => this.applySite(site.id, plan, scope), (r) => r.changes.join('; ') || 'unchanged');
    const wp = report.containers[names.wpContainer(tenant.slug, site.name)];
    await steps.run('wait for database server', () => waitForDatabase(this.docker, dbContainer, t.dbRootPassword, this.config.BERTH_STEP_TIMEOUT_MS));
    await steps.run('site database and user', () => runSql(this.docker, dbContainer, t.dbRootPassword, createSiteDatabaseSql(this.siteFacts(site))));

    if (site.desiredState === DesiredState.STOPPED) {
      await this.monitor.unwatch(site.id);
      await this.setStatus(site, { status: SiteStatus.STOPPED, lastError: null, health: Health.UNKNOWN });
      return SiteStatus.STOPPED;
    }
    if (job.kind === JobKind.RESTART && !restartedBy(report)) {
      await steps.run('restart WordPress container', () => this.docker.restartContainer(wp.Id));
    }
    const port = await steps.run('wait for HTTP', () => this.waitForHttp(wp.Name.replace(/^\//, '')), (p) => `answering on port ${p}`);
    await this.setStatus(site, { status: SiteStatus.RUNNING, hostPort: port, lastError: null });
    await this.health.transition(site.id, Health.UP, 'answered HTTP after the job');
    await this.monitor.settled(site.id, Date.now() + this.config.BERTH_PROBE_INTERVAL_MS);
    return SiteStatus.RUNNING;
  }

  private async remove(tenant: Tenant, site: Site, steps: StepRecorder): Promise<SiteStatus> {
    const t = this.tenantFacts(tenant);
    const dbContainer = names.dbContainer(tenant.slug);
    const { scope } = this.plans(tenant, site);
    await steps.run('tenant network and database server', () => this.applyTenant(tenant.id, planTenant(t, this.settings)), (r) => r.join('; ') || 'unchanged');
    await steps.run('remove containers and volume', () => this.applier.apply(emptyPlan(), scope), (r) => r.changes.join('; ') || 'nothing left');
    await steps.run('wait for database server', () => waitForDatabase(this.docker, dbContainer, t.dbRootPassword, this.config.BERTH_STEP_TIMEOUT_MS));
    await steps.run('drop database and user', () => runSql(this.docker, dbContainer, t.dbRootPassword, dropSiteDatabaseSql(site)));
    await this.monitor.unwatch(site.id);
    await this.setStatus(site, { status: SiteStatus.DELETED, liveName: null, deletedAt: new Date(), hostPort: null, lastError: null, health: Health.UNKNOWN });
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
  private async applySite(siteId: string, plan: Plan, scope: Record<string, string>): Promise<ApplyReport> {
    try {
      return await this.applier.apply(plan, scope);
    } catch (e) {
      if (/port is already allocated|address already in use/i.test((e as Error).message)) {
        await this.prisma.site.update({ where: { id: siteId }, data: { hostPort: null } });
      }
      throw e;
    }
  }

  /** The tenant's shared objects, applied by one worker at a time per tenant. */
  private async applyTenant(tenantId: string, plan: Plan): Promise<string[]> {
    const lock = await this.redis.lock(`berth:lock:tenant:${tenantId}`, this.config.BERTH_STEP_TIMEOUT_MS, this.config.BERTH_LOCK_TTL_MS);
    try {
      return (await this.applier.apply(plan)).changes;
    } finally {
      await lock.release();
    }
  }

  /** Waits until the published port answers HTTP (any status below 500); returns the port. */
  private async waitForHttp(container: string): Promise<number> {
    const deadline = Date.now() + this.config.BERTH_HTTP_READY_TIMEOUT_MS;
    let last = 'no answer yet';
    for (;;) {
      const info = await this.docker.inspectContainer(container);
      const port = Number(info?.NetworkSettings.Ports?.['80/tcp']?.[0]?.HostPort ?? 0);
      if (port && info?.State.Running) {
        const url = siteUrl(this.config.BERTH_PUBLISH_ADDRESS, port) as string;
        try {
          const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(3000) });
          await res.arrayBuffer();
          if (res.status < 500) return port;
          last = `HTTP ${res.status}`;
        } catch (e) {
          last = (e as Error).message;
        }
      } else {
        last = `container is ${info?.State.Status ?? 'missing'}`;
      }
      if (Date.now() > deadline) throw new Error(`site did not answer HTTP within ${this.config.BERTH_HTTP_READY_TIMEOUT_MS} ms: ${last}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const restartedBy = (report: ApplyReport) => report.changes.some((c) => c.includes('started') || c.includes('created'));
