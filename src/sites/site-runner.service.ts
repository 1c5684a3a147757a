import { Injectable } from '@nestjs/common';
import { unfinishedClone } from '../jobs/job-params';
import type { AppliedContainer, ApplyReport } from '../docker/apply.service';
import { emptyPlan } from '../docker/plan.types';
import { PrismaService } from '../database/prisma.service';
import { EdgeService, PRIMARY_DOMAIN } from '../edge/edge.service';
import { EventsService } from '../events/events.service';
import type { Job, Site, Tenant } from '../generated/prisma/client';
import { DesiredState, Health, JobKind, SiteStatus } from '../generated/prisma/enums';
import { guarded, rollbackOf, SupersededError, supersededBy } from '../jobs/generation';
import type { StepRecorder } from '../jobs/step-recorder';
import { createSiteDatabaseSql, dropSiteDatabaseSql } from './site-database';
import { SiteEngine } from './site-engine';
import { names } from './site-plan';
import { SitePlanner } from './site-planner';
import { SiteOwner } from './site-owner';
import { SiteStatusWriter } from './site-status';
import { wordpressSettings, type InstallResult } from './wordpress-install';
import { originOf } from './wordpress-move';

/** The settings an update changes, kept on the job so a failed update can be rolled back. */
export const UPDATABLE = ['env', 'restartPolicy', 'memoryMb', 'cpus', 'imageTag'] as const;
export type SiteSettings = Pick<Site, (typeof UPDATABLE)[number]>;

/** An update whose new container failed and whose previous settings were restored. */
export class RolledBackError extends Error {
  constructor(
    message: string,
    /** What the site is after the rollback. */
    readonly status: SiteStatus,
  ) {
    super(message);
  }
}

/**
 * Brings a site to its desired state, as a job's steps: the one thing jobs do. It decides
 * which steps run (converge, remove, roll back); the planner makes the plans, the engine
 * does each step on Docker, the edge routes the site, and the status writer records the
 * outcome for the job's generation.
 */
@Injectable()
export class SiteRunner {
  constructor(
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    private readonly planner: SitePlanner,
    private readonly engine: SiteEngine,
    private readonly status: SiteStatusWriter,
    private readonly edge: EdgeService,
    private readonly owner: SiteOwner,
  ) {}

  /**
   * Runs the steps that bring the site to its desired state and returns the state it reached;
   * throws on failure. A job whose generation is no longer the site's throws
   * {@link SupersededError} before it changes anything more (the worker also checks between steps).
   */
  async run(job: Job, steps: StepRecorder): Promise<SiteStatus> {
    if (!job.siteId) throw new Error(`job ${job.id} (${job.kind}) has no site to apply`);
    const site = await this.prisma.site.findUniqueOrThrow({ where: { id: job.siteId } });
    const newer = supersededBy(job.generation, site.generation);
    if (newer !== undefined) throw new SupersededError(newer, job.generation);
    const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: site.tenantId } });
    if (site.desiredState === DesiredState.ABSENT) return this.remove(job, tenant, site, steps);
    // A repair (the reconciler's, or a new primary domain's) of a clone whose copy did not
    // complete: FAILED, never a blank WordPress in its place (the request API refuses the rest).
    // A provisioning is the site's own (a clone's copies; no query on a new site's path).
    if (job.kind !== JobKind.PROVISION && (await unfinishedClone(this.prisma, site))) {
      const why = 'this site is a clone whose copy from its backup did not complete: delete it and clone again';
      await this.status.set(site, { status: SiteStatus.FAILED, lastError: why }, job.generation);
      throw new RolledBackError(why, SiteStatus.FAILED);
    }
    if (job.kind === JobKind.PROVISION && site.status !== SiteStatus.RUNNING)
      await this.status.set(site, { status: SiteStatus.PROVISIONING }, job.generation);
    // One engine slot for the converge and, if it fails, its rollback: a rollback never
    // queues behind other jobs inside its own step.
    return this.engine.withEngineSlot(tenant, steps, () => this.convergeOrRollBack(job, tenant, site, steps));
  }

  private async convergeOrRollBack(job: Job, tenant: Tenant, site: Site, steps: StepRecorder): Promise<SiteStatus> {
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
        throw await this.status.superseded(
          site.id,
          job.generation,
          (n) => `update failed: ${message}; not rolled back: generation ${n} was requested since and stays`,
        );
      const restored = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id } });
      const status = await steps.run('roll back to the previous settings', () => this.converge(job, tenant, restored, steps));
      await this.status.set(site, { lastError: `update rolled back: ${message}` }, job.generation);
      throw new RolledBackError(`update failed and was rolled back: ${message}`, status);
    }
  }

  /**
   * Makes Docker, the database server, WordPress and the edge match the site's row, as the
   * job's steps; records the outcome for the job's generation and returns the state reached.
   */
  async converge(job: Job, tenant: Tenant, site: Site, steps: StepRecorder): Promise<SiteStatus> {
    const rootPassword = this.planner.tenantFacts(tenant).dbRootPassword;
    // WordPress's side, beside the database server's: restarted if asked, then answering HTTP.
    // A new site is installed beside that wait, once its database exists: WordPress's first
    // start is copying itself into the new volume meanwhile, and the installer loads
    // WordPress from the image's own copy until it is done (wordpress-install.ts). The edge
    // loads the route and makes the certificate beside both (a head start that never fails
    // the install). The route is reachable from then on, as it is once the site has a port:
    // the edge never serves WordPress's installer (its paths answer 404 there), and the job
    // waits until the edge serves the installed site (the last step).
    const placed = await this.placeObjects(tenant, site, steps, async ({ site: s, report, wp }, branch) => {
      if (s.desiredState === DesiredState.STOPPED) return undefined;
      if (job.kind === JobKind.RESTART && !restartedBy(report)) {
        await branch.run('restart WordPress container', (signal) => this.engine.restart(wp.id, signal));
      }
      const fresh = s.installedAt ? undefined : await this.primary(tenant, s, s.hostPort);
      const [port, install] = await branch.together<[number | null, InstallResult | undefined, unknown]>(
        (b) =>
          b.run(
            'wait for HTTP',
            (signal) => this.engine.waitForHttp(wp.name, signal),
            (p) => `answering on port ${p}`,
          ),
        (b) =>
          fresh
            ? b.run(
                'install WordPress',
                (signal) => this.engine.installWordPress(wp.name, this.planner.installRequest(tenant, s, fresh.url), signal),
                (r) => (r.fresh ? `WordPress ${r.version} installed for ${wordpressSettings(s, tenant).adminUser}` : 'already installed'),
              )
            : Promise.resolve(undefined),
        (b) =>
          fresh && this.edge.enabled
            ? b.run(
                'edge route and certificate',
                (signal) => this.edge.prepare(fresh.hostname, signal),
                (said) => said,
              )
            : Promise.resolve(),
      );
      return { port, install, fresh };
    });
    site = placed.site;
    if (site.desiredState === DesiredState.STOPPED || !placed.side) {
      await this.status.set(site, { status: SiteStatus.STOPPED, lastError: null, health: Health.UNKNOWN }, job.generation);
      return SiteStatus.STOPPED;
    }
    const { port, install, fresh } = placed.side;
    // The URL the install used, unless WordPress answered on another port than the one it was
    // given (without the edge, the URL is the port's).
    const { url, hostname } = fresh && port === site.hostPort ? fresh : await this.primary(tenant, site, port);
    // WordPress's home follows the site's public URL (a new primary domain, a site from before).
    const home = install ? install.home : site.wordpressUrl;
    if (home && originOf(home) !== originOf(url))
      await steps.run(
        'move WordPress to its public URL',
        (signal) => this.engine.moveWordPress(tenant.slug, rootPassword, site.dbName, home, url, signal),
        (r) => `${r.from} → ${r.to}: ${Object.values(r.rewritten).reduce((a, b) => a + b, 0)} values rewritten`,
      );
    if (this.edge.enabled)
      await steps.run(
        'route through the edge',
        (signal) => this.edge.serve(hostname, signal),
        () => `served at ${url}`,
      );
    // The owner hears of it before the install is recorded: a crash in between sends the
    // set-password email again (the next job finds WordPress installed and makes a new key),
    // rather than never.
    if (install) await this.owner.installed(site, wordpressSettings(site, tenant), url, install);
    await this.status.set(
      site,
      {
        status: SiteStatus.RUNNING,
        hostPort: port,
        lastError: null,
        wordpressUrl: url,
        ...(install ? { installedAt: new Date(), adminPasswordSealed: null } : {}),
      },
      job.generation,
    );
    return SiteStatus.RUNNING;
  }

  /**
   * Everything a site needs but serving it: its tenant's network and database server, its
   * host port, volume and WordPress container, and its own database and user. Once the
   * network is there, the database server's side (start it, wait for it, make the site's
   * database) and WordPress's side (its volume and container, then `wordpressSide`, in the
   * same branch) run side by side: WordPress's container does not need the server to start
   * (its link is a name on the tenant's network), and both first starts take most of a
   * site's time. Returns the site with its port, the WordPress container as the apply left
   * it, and what `wordpressSide` returned (`side`).
   */
  async placeObjects<T = undefined>(
    tenant: Tenant,
    site: Site,
    steps: StepRecorder,
    wordpressSide?: (placed: { site: Site; report: ApplyReport; wp: AppliedContainer }, steps: StepRecorder) => Promise<T>,
  ) {
    const rootPassword = this.planner.tenantFacts(tenant).dbRootPassword;
    const placed = { ...site, hostPort: await this.engine.hostPort(site) };
    const { tenant: shared, site: plan, scope } = this.planner.plans(tenant, placed);
    await steps.run(
      'tenant network',
      (signal) => this.engine.applyTenant(tenant.id, { ...emptyPlan(), networks: shared.networks }, signal),
      (r) => r.join('; ') || 'unchanged',
    );
    // WordPress answers 500 until its database exists: its side waits for the database's
    // before `wordpressSide` (the wait for HTTP), whose time is then its own.
    // Assigned when the first branch starts: together() starts branches in order.
    let database!: Promise<void>;
    const [, wordpress] = await steps.together(
      (branch) =>
        (database = (async () => {
          await branch.run(
            'database server',
            (signal) => this.engine.applyTenant(tenant.id, { ...shared, networks: [] }, signal),
            (r) => r.join('; ') || 'unchanged',
          );
          await branch.run('wait for database server', (signal) => this.engine.waitForDatabase(tenant.slug, rootPassword, signal));
          await branch.run('site database and user', (signal) =>
            this.engine.runSql(tenant.slug, rootPassword, createSiteDatabaseSql(this.planner.siteFacts(placed)), signal),
          );
        })()),
      async (branch) => {
        const report = await branch.run(
          'site volume and WordPress container',
          (signal) => this.engine.applySite(placed.id, plan, scope, signal),
          (r) => r.changes.join('; ') || 'unchanged',
        );
        const wp = report.containers[names.wpContainer(this.planner.settings.instance, tenant.slug, placed.name)];
        await database;
        const side = wordpressSide ? await wordpressSide({ site: placed, report, wp }, branch) : undefined;
        return { report, wp, side };
      },
    );
    return { site: placed, ...wordpress };
  }

  /** Where customers reach the site: its primary domain or platform hostname through the edge, else its port. */
  private async primary(tenant: Tenant, site: Site, port: number | null): Promise<{ url: string; hostname: string }> {
    const domain = this.edge.enabled
      ? await this.prisma.domain.findFirst({
          where: { siteId: site.id, ...PRIMARY_DOMAIN.where },
          select: PRIMARY_DOMAIN.select,
          orderBy: PRIMARY_DOMAIN.orderBy,
        })
      : null;
    const url = this.edge.wordpressUrl({ ...site, hostPort: port }, tenant, domain?.hostname) as string;
    return { url, hostname: new URL(url).hostname };
  }

  private async remove(job: Job, tenant: Tenant, site: Site, steps: StepRecorder): Promise<SiteStatus> {
    const rootPassword = this.planner.tenantFacts(tenant).dbRootPassword;
    await this.tenantObjects(tenant, site, steps);
    await steps.run(
      'remove containers and volume',
      (signal) => this.engine.removeSite(this.planner.scope(tenant, site), signal),
      (r) => r.changes.join('; ') || 'nothing left',
    );
    await steps.run('wait for database server', (signal) => this.engine.waitForDatabase(tenant.slug, rootPassword, signal));
    await steps.run('drop database and user', (signal) => this.engine.runSql(tenant.slug, rootPassword, dropSiteDatabaseSql(site), signal));
    // Its hostnames are free for other sites once it is gone.
    await this.prisma.domain.deleteMany({ where: { siteId: site.id } });
    await this.status.set(
      site,
      { status: SiteStatus.DELETED, liveName: null, deletedAt: new Date(), hostPort: null, lastError: null, health: Health.UNKNOWN },
      job.generation,
    );
    await this.events.record({ tenantId: site.tenantId, siteId: site.id, type: 'site.deleted', message: `Site ${site.name} deleted` });
    return SiteStatus.DELETED;
  }

  private async tenantObjects(tenant: Tenant, site: Site, steps: StepRecorder): Promise<void> {
    await steps.run(
      'tenant network and database server',
      (signal) => this.engine.applyTenant(tenant.id, this.planner.plans(tenant, site).tenant, signal),
      (r) => r.join('; ') || 'unchanged',
    );
  }
}

const restartedBy = (report: ApplyReport) => report.changes.some((c) => c.includes('started') || c.includes('created'));
