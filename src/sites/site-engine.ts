import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { ApplyService, type ApplyReport } from '../docker/apply.service';
import { DockerService, isConflict } from '../docker/docker.service';
import { emptyPlan, LABEL, type Plan } from '../docker/plan.types';
import type { Site, Tenant } from '../generated/prisma/client';
import { RedisService, type Lock } from '../redis/redis.service';
import type { StepRecorder } from '../jobs/step-recorder';
import { HostPorts } from './host-ports';
import { runSql, waitForDatabase } from './site-database';
import { names } from './site-plan';
import { SlotCounts } from './slot-counts';
import { siteUrl } from '../common/site-url';
import { moveWordPress, type MoveReport } from './wordpress-move';
import { INSTALL_COMMAND, INSTALL_PHP, parseInstallResult, type InstallRequest, type InstallResult } from './wordpress-install';

/** How long a job may wait for an engine slot, and how long a slot outlives a holder that died. */
const SLOT_WAIT_MS = 60 * 60_000;
const SLOT_TTL_MS = 30_000;

/** The web server's user in WordPress images (Debian's www-data): what WordPress itself writes as. */
const WEB_USER = '33:33';

/** A container and the engine it is on (one engine, or a Swarm node's own). */
export interface EnginePlace {
  docker: DockerService;
  container: string;
}

/** Where a site's content is now: what backups read and restores write. */
export interface ContentPlaces {
  /** The tenant's database server. */
  db: EnginePlace;
  /** The site's WordPress container; none while a site on a Swarm is stopped (its service has no task). */
  wp?: EnginePlace;
  /** The engine that holds the site's files volume. */
  volumes: DockerService;
}

/**
 * What a site's job does on the engine, step by step: apply its tenant's objects (one worker
 * per tenant at a time) and its own, run SQL on the tenant's database server, and wait until
 * the server and the site answer. Every step takes the step's signal and changes nothing once
 * it has aborted (timed out, or the site's lock was lost).
 *
 * Two backends (BERTH_ENGINE): {@link DockerSiteEngine} on one Docker Engine, and
 * SwarmSiteEngine (swarm-site-engine.ts) on a Swarm. Jobs see only this class.
 */
export abstract class SiteEngine {
  private readonly slotCounts: SlotCounts;

  constructor(
    protected readonly config: BerthConfig,
    protected readonly redis: RedisService,
  ) {
    const logger = new Logger(SiteEngine.name);
    this.slotCounts = new SlotCounts(config.BERTH_ENGINE_SLOTS, (scope, e) =>
      logger.warn(`engine slots of ${scope || 'the engine'}: its CPUs not known (${e.message}); twice this machine's cores meanwhile`),
    );
  }

  /** The tenant's shared objects, under the tenant's lock; returns what changed. */
  async applyTenant(tenantId: string, plan: Plan, signal: AbortSignal): Promise<string[]> {
    const lock = await this.redis.lock(
      `berth:lock:tenant:${tenantId}`,
      this.config.BERTH_STEP_TIMEOUT_MS,
      this.config.BERTH_LOCK_TTL_MS,
      signal,
    );
    try {
      return await this.applyTenantObjects(tenantId, plan, AbortSignal.any([signal, lock.signal]));
    } finally {
      await lock.release();
    }
  }

  protected abstract applyTenantObjects(tenantId: string, plan: Plan, signal: AbortSignal): Promise<string[]>;

  /** Removes every object of the tenant (its network, database server and volumes), under the tenant's lock. */
  async removeTenant(tenant: { id: string; slug: string; nodeId: string | null }, signal?: AbortSignal): Promise<string[]> {
    const lock = await this.redis.lock(
      `berth:lock:tenant:${tenant.id}`,
      this.config.BERTH_STEP_TIMEOUT_MS,
      this.config.BERTH_LOCK_TTL_MS,
      signal,
    );
    try {
      const scope = { [LABEL.instance]: this.config.BERTH_INSTANCE, [LABEL.tenant]: tenant.slug };
      return await this.removeTenantObjects(tenant, scope, signal ? AbortSignal.any([signal, lock.signal]) : lock.signal);
    } finally {
      await lock.release();
    }
  }

  protected abstract removeTenantObjects(
    tenant: { nodeId: string | null },
    scope: Record<string, string>,
    signal: AbortSignal,
  ): Promise<string[]>;

  /**
   * Runs fn holding one of the engine's slots (BERTH_ENGINE_SLOTS, or twice the engine's CPUs:
   * {@link SlotCounts}; Redis locks, so shared by
   * every worker process of the instance and freed by a holder that dies): a site job that
   * finds none free waits, as a step of its own, until one is. Admission only: a slot lost
   * while fn runs (Redis out of reach) does not stop fn. The slots are the engine's that
   * holds the tenant ({@link slotScope}): on a Swarm, each node has its own.
   */
  async withEngineSlot<T>(tenant: Pick<Tenant, 'nodeId'>, steps: StepRecorder, fn: () => Promise<T>): Promise<T> {
    const scope = this.slotScope(tenant);
    const slots = await this.slotCounts.of(scope.key, () => this.engineCpus(tenant));
    const prefix = `berth:slot:engine:${this.config.BERTH_INSTANCE}${scope.key}`;
    let held: Lock | undefined = await this.redis.trySlot(prefix, slots, SLOT_TTL_MS);
    if (!held) {
      try {
        await steps.run(
          'wait for an engine slot',
          async (signal) => {
            held = await this.redis.slot(prefix, slots, SLOT_WAIT_MS, SLOT_TTL_MS, signal);
          },
          () => `${slots} site job${slots === 1 ? '' : 's'} at once on ${scope.name}`,
          // Waiting is queueing, not a step that hangs: as long as a burst needs.
          SLOT_WAIT_MS,
        );
      } catch (e) {
        // Taken, but the step failed afterwards (recording it): given back, never kept.
        await (held as Lock | undefined)?.release();
        throw e;
      }
    }
    const slot = held as Lock;
    try {
      return await fn();
    } finally {
      await slot.release();
    }
  }

  /** The CPUs of the engine whose slots the tenant's site jobs take, as it reports them. */
  protected abstract engineCpus(tenant: Pick<Tenant, 'nodeId'>): Promise<number>;

  /** Whose engine slots a tenant's site jobs take: a suffix of their Redis keys, and its name for people. */
  protected slotScope(tenant: Pick<Tenant, 'nodeId'>): { key: string; name: string } {
    void tenant;
    return { key: '', name: 'this engine' };
  }

  /** The host port the site is published on, reserved for life; null where sites publish none (a Swarm). */
  abstract hostPort(site: Site): Promise<number | null>;
  /** The site's own objects; `report.containers` names its WordPress container (or service) by name. */
  abstract applySite(siteId: string, plan: Plan, scope: Record<string, string>, signal: AbortSignal): Promise<ApplyReport>;
  /** Removes every object of the scope: the site's containers (or services) and its files volume. */
  abstract removeSite(scope: Record<string, string>, signal: AbortSignal): Promise<ApplyReport>;
  abstract waitForDatabase(tenantSlug: string, rootPassword: string, signal: AbortSignal): Promise<void>;
  abstract runSql(tenantSlug: string, rootPassword: string, sql: string, signal: AbortSignal): Promise<void>;
  /** Restarts the site's WordPress container (`id` as the apply reported it). */
  abstract restart(id: string, signal: AbortSignal): Promise<void>;
  /** Waits until WordPress answers HTTP (any status below 500); returns its host port, null without one. */
  abstract waitForHttp(container: string, signal: AbortSignal): Promise<number | null>;
  /** Installs WordPress in the site's container (or finds it installed); the request goes over stdin only. */
  abstract installWordPress(container: string, request: InstallRequest, signal: AbortSignal): Promise<InstallResult>;
  /** Rewrites the site's URLs in its database from `from`'s origin to `to`'s (GUIDs aside). */
  abstract moveWordPress(
    tenantSlug: string,
    rootPassword: string,
    dbName: string,
    from: string,
    to: string,
    signal: AbortSignal,
  ): Promise<MoveReport>;
  // What backups and restores use.
  /** Where the site's database server, WordPress container and volume are now. */
  abstract contentPlaces(tenant: Pick<Tenant, 'slug' | 'nodeId'>, siteName: string, signal: AbortSignal): Promise<ContentPlaces>;
  /**
   * Stops WordPress (given `graceSeconds` to finish what it serves) so that nothing writes to
   * its files; returns the image it ran, if it was there.
   */
  /** `onNode` (a Swarm): only its task there is waited for, the node whose volume is about to be written. */
  abstract stopWordPress(container: string, signal: AbortSignal, graceSeconds?: number, onNode?: string): Promise<string | undefined>;
  /** What the site's home page answers, as a visitor's first request: the status, and where it redirects to. */
  abstract homePage(
    site: Pick<Site, 'hostPort'>,
    container: string,
    signal: AbortSignal,
  ): Promise<{ status: number; location: string | null }>;
}

/** Runs WordPress's install (or the image's own berth-wp-install) in `container` on `docker`. */
export async function installIn(
  docker: DockerService,
  container: string,
  request: InstallRequest,
  signal: AbortSignal,
): Promise<InstallResult> {
  signal.throwIfAborted();
  const res = await docker.exec(container, INSTALL_COMMAND, {
    env: [`BERTH_WP_INSTALL=${INSTALL_PHP}`],
    stdin: JSON.stringify(request),
    user: WEB_USER,
    signal,
  });
  return parseInstallResult(res.exitCode, res.stdout, res.stderr);
}

/** Berth's site jobs on one Docker Engine (BERTH_ENGINE=docker): containers, a host port each. */
@Injectable()
export class DockerSiteEngine extends SiteEngine {
  constructor(
    @Inject(BERTH_CONFIG) config: BerthConfig,
    private readonly docker: DockerService,
    private readonly applier: ApplyService,
    redis: RedisService,
    private readonly ports: HostPorts,
  ) {
    super(config, redis);
  }

  protected async engineCpus(): Promise<number> {
    return this.docker.cpus();
  }

  protected async applyTenantObjects(_tenantId: string, plan: Plan, signal: AbortSignal): Promise<string[]> {
    return (await this.applier.apply(plan, undefined, signal)).changes;
  }

  /** The empty plan applied to the tenant's scope removes its network, database server and volume. */
  protected async removeTenantObjects(_tenant: unknown, scope: Record<string, string>, signal: AbortSignal): Promise<string[]> {
    return (await this.applier.apply(emptyPlan(), scope, signal)).changes;
  }

  hostPort(site: Site): Promise<number> {
    return this.ports.reserve(site);
  }

  /** The site's own objects; a host port something else holds is given up for the next attempt. */
  async applySite(siteId: string, plan: Plan, scope: Record<string, string>, signal: AbortSignal): Promise<ApplyReport> {
    try {
      return await this.applier.apply(plan, scope, signal);
    } catch (e) {
      if (/port is already allocated|address already in use/i.test((e as Error).message)) await this.ports.release(siteId);
      throw e;
    }
  }

  /** Removes every object of the scope: the site's containers and its files volume. */
  removeSite(scope: Record<string, string>, signal: AbortSignal): Promise<ApplyReport> {
    return this.applier.apply(emptyPlan(), scope, signal);
  }

  waitForDatabase(tenantSlug: string, rootPassword: string, signal: AbortSignal): Promise<void> {
    return waitForDatabase(this.docker, this.dbContainer(tenantSlug), rootPassword, this.config.BERTH_STEP_TIMEOUT_MS, signal);
  }

  async runSql(tenantSlug: string, rootPassword: string, sql: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await runSql(this.docker, this.dbContainer(tenantSlug), rootPassword, sql, signal);
  }

  contentPlaces(tenant: Pick<Tenant, 'slug'>, siteName: string): Promise<ContentPlaces> {
    const instance = this.config.BERTH_INSTANCE;
    return Promise.resolve({
      db: { docker: this.docker, container: this.dbContainer(tenant.slug) },
      wp: { docker: this.docker, container: names.wpContainer(instance, tenant.slug, siteName) },
      volumes: this.docker,
    });
  }

  /** Stops the container if it runs, giving it `graceSeconds` to finish what it serves before it is killed. */
  async stopWordPress(container: string, signal: AbortSignal, graceSeconds = 10): Promise<string | undefined> {
    signal.throwIfAborted();
    const info = await this.docker.inspectContainer(container);
    if (info?.State.Running) await this.docker.stopContainer(info.Id, graceSeconds);
    return info?.Config.Image;
  }

  async restart(containerId: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await this.docker.restartContainer(containerId);
  }

  /** What the site's home page answers on its published port: the status, and where it redirects to. */
  async homePage(
    site: Pick<Site, 'hostPort'>,
    _container: string,
    signal: AbortSignal,
  ): Promise<{ status: number; location: string | null }> {
    const url = siteUrl(this.config.BERTH_PUBLISH_ADDRESS, site.hostPort);
    if (!url) throw new Error('the site has no host port');
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
    await res.arrayBuffer();
    return { status: res.status, location: res.headers.get('location') };
  }

  /** Waits until the container's published port answers HTTP (any status below 500); returns the port. */
  async waitForHttp(container: string, signal: AbortSignal): Promise<number> {
    const deadline = Date.now() + this.config.BERTH_HTTP_READY_TIMEOUT_MS;
    let last: string;
    // What the container's inspection said is taken as known for a second while it runs and
    // a quarter while it does not: the site is asked every 50 ms (a request to a local port),
    // and an inspect each time would be dockerd's work.
    let seen: { port: number; running: boolean; status: string; at: number } | undefined;
    for (;;) {
      signal.throwIfAborted();
      if (!seen || Date.now() - seen.at >= (seen.port && seen.running ? 1000 : 250)) {
        const info = await this.docker.inspectContainer(container);
        const port = Number(info?.NetworkSettings.Ports?.['80/tcp']?.[0]?.HostPort ?? 0);
        seen = { port, running: !!info?.State.Running, status: info?.State.Status ?? 'missing', at: Date.now() };
      }
      const { port } = seen;
      if (port && seen.running) {
        const url = siteUrl(this.config.BERTH_PUBLISH_ADDRESS, port) as string;
        try {
          const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.any([signal, AbortSignal.timeout(3000)]) });
          await res.arrayBuffer();
          if (res.status < 500) return port;
          last = `HTTP ${res.status}`;
        } catch (e) {
          signal.throwIfAborted();
          last = (e as Error).message;
        }
      } else {
        last = `container is ${seen.status}`;
      }
      if (Date.now() > deadline) throw new Error(`site did not answer HTTP within ${this.config.BERTH_HTTP_READY_TIMEOUT_MS} ms: ${last}`);
      await delay(50, undefined, { signal });
    }
  }

  /**
   * The install runs beside the wait for HTTP, so the container may be restarting (its first
   * start failed, its restart policy at work): the exec is tried again every quarter second
   * while the engine says so, and the wait for HTTP, which stops this step when it fails,
   * says why the container does not stay up.
   */
  async installWordPress(container: string, request: InstallRequest, signal: AbortSignal): Promise<InstallResult> {
    for (;;) {
      try {
        return await installIn(this.docker, container, request, signal);
      } catch (e) {
        if (!(isConflict(e) && /is not running|is restarting|is paused/i.test((e as Error).message))) throw e;
        await delay(250, undefined, { signal });
      }
    }
  }

  /** Rewrites the site's URLs in its database from `from`'s origin to `to`'s (GUIDs aside). */
  async moveWordPress(
    tenantSlug: string,
    rootPassword: string,
    dbName: string,
    from: string,
    to: string,
    signal: AbortSignal,
  ): Promise<MoveReport> {
    signal.throwIfAborted();
    return moveWordPress(this.docker, { container: this.dbContainer(tenantSlug), rootPassword, dbName }, from, to, signal);
  }

  private dbContainer(tenantSlug: string): string {
    return names.dbContainer(this.config.BERTH_INSTANCE, tenantSlug);
  }
}
