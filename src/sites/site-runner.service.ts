import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Job, Site, Tenant } from '../generated/prisma/client';
import { DesiredState, JobKind, SiteStatus } from '../generated/prisma/enums';
import { SecretBox } from '../common/crypto';
import { ApplyService } from '../docker/apply.service';
import { DockerService } from '../docker/docker.service';
import { emptyPlan, LABEL } from '../docker/plan.types';
import { RedisService } from '../redis/redis.service';
import { EventsService } from '../events/events.service';
import { StepRecorder } from '../jobs/step-recorder';
import { MonitorService } from '../monitor/monitor.service';
import { SiteHealthService } from '../monitor/site-health.service';
import { Health } from '../generated/prisma/enums';
import { names, planSite, planTenant, type PlanSettings, type SiteFacts, type TenantFacts } from './site-plan';
import { createSiteDatabaseSql, dropSiteDatabaseSql, runSql, waitForDatabase } from './site-database';
import { siteChannel, siteUrl } from './site-urls';

export interface RunOutcome {
  status: SiteStatus;
  hostPort: number | null;
}

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
    };
  }

  tenantFacts(t: Tenant): TenantFacts {
    return { slug: t.slug, networkIndex: t.networkIndex, dbRootPassword: this.box.open(t.dbRootPasswordEnc) };
  }

  siteFacts(s: Site & { hostPort: number }): SiteFacts {
    return {
      hostPort: s.hostPort,
      id: s.id, name: s.name, env: s.env as Record<string, string>, restartPolicy: s.restartPolicy,
      memoryMb: s.memoryMb, cpus: s.cpus, dbName: s.dbName, dbUser: s.dbUser,
      dbPassword: this.box.open(s.dbPasswordEnc), running: s.desiredState === DesiredState.RUNNING,
    };
  }

  async setStatus(site: Site, data: Partial<Pick<Site, 'status' | 'hostPort' | 'lastError' | 'liveName' | 'deletedAt' | 'health'>>): Promise<Site> {
    const updated = await this.prisma.site.update({ where: { id: site.id }, data });
    await this.redis.publish(siteChannel(site.id), { id: site.id }).catch(() => undefined);
    return updated;
  }

  /** Runs the steps that bring the site to its desired state; throws on failure. */
  async run(job: Job, steps: StepRecorder): Promise<RunOutcome> {
    let site = await this.prisma.site.findUniqueOrThrow({ where: { id: job.siteId } });
    const tenantRow = await this.prisma.tenant.findUniqueOrThrow({ where: { id: site.tenantId } });
    const tenant = this.tenantFacts(tenantRow);
    const facts = this.siteFacts({ ...site, hostPort: site.hostPort ?? 0 });
    const scope = { [LABEL.instance]: this.config.BERTH_INSTANCE, [LABEL.tenant]: tenant.slug, [LABEL.siteId]: site.id };
    const dbContainer = names.dbContainer(tenant.slug);

    if (site.desiredState !== DesiredState.ABSENT && site.status !== SiteStatus.RUNNING && job.kind === JobKind.PROVISION) {
      site = await this.setStatus(site, { status: SiteStatus.PROVISIONING });
    }
    await steps.run('tenant network and database server', () => this.applyTenant(tenantRow.id, tenant), (r) => r.join('; ') || 'unchanged');

    if (site.desiredState === DesiredState.ABSENT) {
      await steps.run('remove containers and volume', () => this.applier.apply(emptyPlan(), scope), (r) => r.changes.join('; ') || 'nothing left');
      await steps.run('wait for database server', () => waitForDatabase(this.docker, dbContainer, tenant.dbRootPassword, this.config.BERTH_STEP_TIMEOUT_MS));
      await steps.run('drop database and user', () => runSql(this.docker, dbContainer, tenant.dbRootPassword, dropSiteDatabaseSql(facts)));
      await this.monitor.unwatch(site.id);
      await this.setStatus(site, { status: SiteStatus.DELETED, liveName: null, deletedAt: new Date(), hostPort: null, lastError: null, health: Health.UNKNOWN });
      await this.events.record({ tenantId: site.tenantId, siteId: site.id, type: 'site.deleted', message: `Site ${site.name} deleted` });
      return { status: SiteStatus.DELETED, hostPort: null };
    }

    facts.hostPort = await this.reserveHostPort(site);
    const report = await steps.run('site volume and WordPress container', () => this.applySite(site.id, planSite(tenant, facts, this.settings), scope), (r) => r.changes.join('; ') || 'unchanged');
    const wp = report.containers[names.wpContainer(tenant.slug, site.name)];
    await steps.run('wait for database server', () => waitForDatabase(this.docker, dbContainer, tenant.dbRootPassword, this.config.BERTH_STEP_TIMEOUT_MS));
    await steps.run('site database and user', () => runSql(this.docker, dbContainer, tenant.dbRootPassword, createSiteDatabaseSql(facts)));

    if (!facts.running) {
      await this.monitor.unwatch(site.id);
      await this.setStatus(site, { status: SiteStatus.STOPPED, lastError: null, health: Health.UNKNOWN });
      return { status: SiteStatus.STOPPED, hostPort: site.hostPort };
    }
    if (job.kind === JobKind.RESTART && !report.changes.some((c) => c.includes('started') || c.includes('created'))) {
      await steps.run('restart WordPress container', () => this.docker.restartContainer(wp.Id));
    }
    const hostPort = await steps.run('wait for HTTP', () => this.waitForHttp(wp.Name.replace(/^\//, '')), (p) => `answering on port ${p}`);
    await this.setStatus(site, { status: SiteStatus.RUNNING, hostPort, lastError: null });
    await this.health.transition(site.id, Health.UP, 'answered HTTP after the job');
    await this.monitor.watch(site.id, Date.now() + this.config.BERTH_PROBE_INTERVAL_MS);
    return { status: SiteStatus.RUNNING, hostPort };
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
      const taken = await this.prisma.site.updateMany({ where: { id: site.id, hostPort: null }, data: { hostPort: port } }).then(
        (r) => r.count === 0,
        () => true,
      );
      const now = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id }, select: { hostPort: true } });
      if (now.hostPort) return now.hostPort;
      if (!taken) break;
    }
    throw new Error(`no free host port found in ${lo}-${hi}`);
  }

  /** A port something else on the host holds is given up, so the next attempt takes another. */
  private async applySite(siteId: string, plan: ReturnType<typeof planSite>, scope: Record<string, string>) {
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
  private async applyTenant(tenantId: string, tenant: TenantFacts): Promise<string[]> {
    const lock = await this.redis.lock(`berth:lock:tenant:${tenantId}`, this.config.BERTH_STEP_TIMEOUT_MS);
    try {
      return (await this.applier.apply(planTenant(tenant, this.settings))).changes;
    } finally {
      await lock.release();
    }
  }

  /** Waits until the published port answers HTTP (any status below 500); returns the port. */
  private async waitForHttp(container: string): Promise<number> {
    const deadline = Date.now() + this.config.BERTH_STEP_TIMEOUT_MS;
    let last = 'no answer yet';
    for (;;) {
      const info = await this.docker.inspectContainer(container);
      const port = Number(info?.NetworkSettings.Ports?.['80/tcp']?.[0]?.HostPort ?? 0);
      if (port) {
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
      if (Date.now() > deadline) throw new Error(`site did not answer HTTP: ${last}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
