import { Inject, Injectable } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Tenant } from '../generated/prisma/client';
import type { ApplyReport } from '../docker/apply.service';
import type { DockerService } from '../docker/docker.service';
import { NodeEngines } from '../docker/node-engines';
import { LABEL, type ContainerSpec, type Plan } from '../docker/plan.types';
import { SwarmApplyService } from '../docker/swarm-apply.service';
import { RedisService } from '../redis/redis.service';
import { DB_PORT, runSql, UnreachableError, waitUntilReady } from './site-database';
import { installIn, SiteEngine, type ContentPlaces } from './site-engine';
import { names } from './site-plan';
import type { InstallRequest, InstallResult } from './wordpress-install';
import { moveWordPress, type MoveReport } from './wordpress-move';

/**
 * Asks WordPress for its front page from inside its own container, as the edge would (no
 * redirect followed), and prints the status and where it redirects to: PHP where the image
 * has it (WordPress's), else a raw HTTP/1.0 request through busybox's nc (Berth's stand-in
 * image; its wget crashes in a Swarm task). "0" when nothing answered.
 */
const HOME_PAGE_COMMAND = [
  'sh',
  '-c',
  'if command -v php >/dev/null 2>&1; then exec php -r \'$h = @get_headers("http://127.0.0.1/", false, stream_context_create(["http" => ["follow_location" => 0, "timeout" => 5]])); ' +
    'if (!$h) { echo 0; exit; } $l = ""; foreach ($h as $x) if (stripos($x, "location:") === 0) $l = trim(substr($x, 9)); echo explode(" ", $h[0])[1], " ", $l;\'; fi; ' +
    'printf "GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n" | nc -w 5 127.0.0.1 80 | tr -d "\\r" | ' +
    'awk \'NR == 1 { s = $2 } tolower($1) == "location:" { l = $2 } /^$/ { exit } END { print (s ? s : 0) " " l }\'',
];

/**
 * Berth's site jobs on a Swarm (BERTH_ENGINE=swarm): the same plans as services pinned to the
 * tenant's node (src/docker/swarm-plan.ts says how each part differs), applied through the
 * manager; what a manager cannot do (exec in a task's container: SQL, WordPress's install,
 * the readiness checks; a node's volumes) goes to the node's own engine (NodeEngines).
 * WordPress services join the edge network (BERTH_SWARM_EDGE_NETWORK), where the edge
 * reaches them by service name; no site publishes a port.
 */
@Injectable()
export class SwarmSiteEngine extends SiteEngine {
  constructor(
    @Inject(BERTH_CONFIG) config: BerthConfig,
    redis: RedisService,
    private readonly swarm: SwarmApplyService,
    private readonly nodes: NodeEngines,
    private readonly prisma: PrismaService,
  ) {
    super(config, redis);
  }

  /** Each node's engine has its own slots (twice its own CPUs by default): a busy node does not hold back the others' site jobs. */
  protected override slotScope(tenant: Pick<Tenant, 'nodeId'>): { key: string; name: string } {
    return tenant.nodeId ? { key: `:node:${tenant.nodeId}`, name: `node ${tenant.nodeId}` } : super.slotScope(tenant);
  }

  /** The CPUs of the tenant's node, as the manager lists it (the manager's own engine for a tenant not yet placed). */
  protected async engineCpus(tenant: Pick<Tenant, 'nodeId'>): Promise<number> {
    return this.nodes.cpusOf(tenant.nodeId);
  }

  protected async applyTenantObjects(tenantId: string, plan: Plan, signal: AbortSignal): Promise<string[]> {
    const nodeId = await this.nodeOf({ id: tenantId });
    const aliases = (c: ContainerSpec) => (c.create.Labels[LABEL.role] === 'db' ? ['mysql'] : []);
    const { changes } = await this.swarm.apply(plan, { nodeId }, { aliases }, signal);
    // The database server's new task (a new password, new limits) before its SQL runs.
    for (const c of plan.containers) await this.swarm.awaitUpdate(c.name, this.config.BERTH_STEP_TIMEOUT_MS, signal);
    return changes;
  }

  /** The tenant's services and network through the manager, then its volumes on its node. */
  protected async removeTenantObjects(
    tenant: { nodeId: string | null },
    scope: Record<string, string>,
    signal: AbortSignal,
  ): Promise<string[]> {
    const { changes, nodes } = await this.swarm.removeScope(scope);
    changes.push(...(await this.swarm.removeNetworks(scope, signal)));
    changes.push(...(await this.removeVolumes(nodes, tenant.nodeId, scope, signal)));
    return changes;
  }

  /** Sites publish no port on a Swarm: the edge reaches them on its network. */
  hostPort(): Promise<null> {
    return Promise.resolve(null);
  }

  async applySite(siteId: string, plan: Plan, _scope: Record<string, string>, signal: AbortSignal): Promise<ApplyReport> {
    const site = await this.prisma.site.findUniqueOrThrow({ where: { id: siteId }, select: { tenantId: true } });
    const nodeId = await this.nodeOf({ id: site.tenantId });
    const edge = this.config.BERTH_SWARM_EDGE_NETWORK;
    const { changes } = await this.swarm.apply(plan, { nodeId }, { networks: () => [edge] }, signal);
    // Until an update has rolled out, the old task would answer the checks that follow.
    for (const c of plan.containers) await this.swarm.awaitUpdate(c.name, this.config.BERTH_STEP_TIMEOUT_MS, signal);
    // A service is named as the container it stands for; jobs address it by that name.
    return { changes, containers: Object.fromEntries(plan.containers.map((c) => [c.name, { id: c.name, name: c.name }])) };
  }

  /** The site's services, then its volume on the node its task ran on, once no container holds it. */
  async removeSite(scope: Record<string, string>, signal: AbortSignal): Promise<ApplyReport> {
    const { changes, nodes } = await this.swarm.removeScope(scope);
    const tenant = await this.prisma.tenant.findUnique({ where: { slug: scope[LABEL.tenant] }, select: { nodeId: true } });
    changes.push(...(await this.removeVolumes(nodes, tenant?.nodeId ?? null, scope, signal)));
    return { changes, containers: {} };
  }

  /**
   * The scope's volumes on the tenant's node and each of `nodes` (where its tasks ran), each
   * once no container holds it. A node other than the tenant's that is down (one it was
   * evacuated from) is not waited for: once it is back, the reconciler removes what is there,
   * which no live site or tenant claims any more. The tenant's own node must be reachable.
   */
  private async removeVolumes(nodes: string[], home: string | null, scope: Record<string, string>, signal: AbortSignal): Promise<string[]> {
    const changes: string[] = [];
    const listed = new Map((await this.nodes.list()).map((n) => [n.ID, n]));
    for (const nodeId of new Set([...nodes, ...(home ? [home] : [])])) {
      const node = listed.get(nodeId);
      // A node that left the Swarm took its volumes with it: nothing to remove, nothing to wait for.
      if (!node) {
        changes.push(`node ${nodeId} has left the Swarm: its volumes went with it`);
        continue;
      }
      // Down or disconnected for Swarm (not the moment of `unknown` as a manager starts).
      if (nodeId !== home && (node.Status.State === 'down' || node.Status.State === 'disconnected')) {
        changes.push(
          `node ${node.Description.Hostname} is ${node.Status.State}: what is there is removed by the reconciler once it is back`,
        );
        continue;
      }
      const engine = this.nodes.engineOf(nodeId, node);
      for (const v of await engine.listVolumes(scope)) {
        await this.removeVolumeOnceFree(engine, v.Name, signal);
        changes.push(`volume ${v.Name} removed`);
      }
    }
    return changes;
  }

  /** Whether the tenant has its database server (a tenant whose sites were never made has none). */
  hasDatabaseServer(tenantSlug: string): Promise<boolean> {
    return this.swarm.exists(this.dbService(tenantSlug));
  }

  /** Whether what is on the node can be reached now: it is ready, or it has left the Swarm (nothing is left there). */
  async nodeReachable(nodeId: string): Promise<boolean> {
    const node = await this.nodes.node(nodeId);
    return !node || node.Status.State === 'ready';
  }

  /**
   * What a tenant left on a node it moved away from: its tasks' stopped containers (Swarm
   * keeps a few of each service's old tasks), then its volumes. A container still running
   * there (a task being stopped) is waited for, up to `stopWaitMs`; the node must be ready.
   */
  async clearNode(
    tenantSlug: string,
    nodeId: string,
    signal: AbortSignal,
    stopWaitMs = this.config.BERTH_STEP_TIMEOUT_MS,
  ): Promise<string[]> {
    const node = await this.nodes.node(nodeId);
    if (!node) return [`node ${nodeId} has left the Swarm: nothing of the tenant is left there`];
    // A node that is down would hold each call for minutes: what is left there waits until it is back.
    if (node.Status.State !== 'ready') throw new Error(`node ${node.Description.Hostname} is ${node.Status.State}`);
    const engine = this.nodes.engineOf(nodeId, node);
    const scope = { [LABEL.instance]: this.config.BERTH_INSTANCE, [LABEL.tenant]: tenantSlug };
    const changes: string[] = [];
    const deadline = Date.now() + stopWaitMs;
    for (;;) {
      const containers = await engine.listContainers(scope);
      const running = containers.filter((c) => c.State === 'running');
      for (const c of containers.filter((c) => c.State !== 'running')) {
        await engine.removeContainer(c.Id);
        changes.push(`container ${c.Names[0]?.replace(/^\//, '') ?? c.Id} removed`);
      }
      if (!running.length) break;
      if (Date.now() > deadline) throw new Error(`container ${running[0].Names[0]} of the tenant still runs on node ${nodeId}`);
      await delay(500, undefined, { signal });
    }
    for (const v of await engine.listVolumes(scope)) {
      await this.removeVolumeOnceFree(engine, v.Name, signal);
      changes.push(`volume ${v.Name} removed`);
    }
    return changes;
  }

  async waitForDatabase(tenantSlug: string, rootPassword: string, signal: AbortSignal): Promise<void> {
    const service = this.dbService(tenantSlug);
    const timeoutMs = this.config.BERTH_STEP_TIMEOUT_MS;
    // The task on the tenant's node: one just moved there may still have its old task running elsewhere.
    const node = await this.nodeOf({ slug: tenantSlug });
    await waitUntilReady(
      {
        name: service,
        // The tenant's overlay network is not reachable from outside the cluster.
        address: () => Promise.reject(new UnreachableError('a tenant network is reached only from inside the Swarm')),
        port: DB_PORT,
        viaExec: async () => {
          const task = await this.nodes.runningTask(service, timeoutMs, signal, node);
          await runSql(task.engine, task.container, rootPassword, 'SELECT 1', signal);
        },
        intervalMs: { tcp: 250, exec: 1000 },
      },
      timeoutMs,
      signal,
    );
  }

  async runSql(tenantSlug: string, rootPassword: string, sql: string, signal: AbortSignal): Promise<void> {
    const node = await this.nodeOf({ slug: tenantSlug });
    const task = await this.nodes.runningTask(this.dbService(tenantSlug), this.config.BERTH_STEP_TIMEOUT_MS, signal, node);
    await runSql(task.engine, task.container, rootPassword, sql, signal);
  }

  async restart(service: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await this.swarm.restart(service);
    await this.swarm.awaitUpdate(service, this.config.BERTH_STEP_TIMEOUT_MS, signal);
  }

  /** Waits until WordPress's running task answers HTTP below 500 from inside; there is no host port. */
  async waitForHttp(service: string, signal: AbortSignal): Promise<null> {
    const timeoutMs = this.config.BERTH_HTTP_READY_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      signal.throwIfAborted();
      try {
        const task = await this.nodes.runningTask(service, Math.max(0, deadline - Date.now()), signal);
        const { status, error } = await this.askHomePage(task.engine, task.container, signal);
        if (status > 0 && status < 500) return null;
        last = status ? `HTTP ${status}` : `no answer (${error})`;
      } catch (e) {
        signal.throwIfAborted();
        last = (e as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`site did not answer HTTP within ${timeoutMs} ms: ${last}`);
      await delay(500, undefined, { signal });
    }
  }

  async installWordPress(service: string, request: InstallRequest, signal: AbortSignal): Promise<InstallResult> {
    const task = await this.nodes.runningTask(service, this.config.BERTH_STEP_TIMEOUT_MS, signal);
    return installIn(task.engine, task.container, request, signal);
  }

  async moveWordPress(
    tenantSlug: string,
    rootPassword: string,
    dbName: string,
    from: string,
    to: string,
    signal: AbortSignal,
  ): Promise<MoveReport> {
    const task = await this.nodes.runningTask(this.dbService(tenantSlug), this.config.BERTH_STEP_TIMEOUT_MS, signal);
    return moveWordPress(task.engine, { container: task.container, rootPassword, dbName }, from, to, signal);
  }

  /** The database server's running task, WordPress's if it runs, and the engine of the tenant's node (its volumes). */
  async contentPlaces(tenant: Pick<Tenant, 'slug' | 'nodeId'>, siteName: string, signal: AbortSignal): Promise<ContentPlaces> {
    if (!tenant.nodeId) throw new Error(`tenant ${tenant.slug} has no node: it was made before Berth ran on this Swarm`);
    // Only tasks on the tenant's node: while a tenant moves, its old node's (or new node's) are not its content.
    const db = await this.nodes.runningTask(this.dbService(tenant.slug), this.config.BERTH_STEP_TIMEOUT_MS, signal, tenant.nodeId);
    const wp = await this.nodes.runningTaskNow(names.wpContainer(this.config.BERTH_INSTANCE, tenant.slug, siteName), tenant.nodeId);
    return {
      db: { docker: db.engine, container: db.container },
      wp: wp && { docker: wp.engine, container: wp.container },
      volumes: await this.nodes.of(tenant.nodeId),
    };
  }

  /** Scales WordPress's service to no task (Swarm stops it with its grace period); the next apply scales it back. */
  stopWordPress(service: string, signal: AbortSignal, _graceSeconds?: number, onNode?: string): Promise<string | undefined> {
    return this.swarm.stop(service, this.config.BERTH_STEP_TIMEOUT_MS, signal, onNode);
  }

  /** The home page, asked from inside WordPress's running task (no site publishes a port). */
  async homePage(_site: unknown, service: string, signal: AbortSignal): Promise<{ status: number; location: string | null }> {
    const task = await this.nodes.runningTask(service, this.config.BERTH_STEP_TIMEOUT_MS, signal);
    const { status, location, error } = await this.askHomePage(task.engine, task.container, signal);
    if (!status) throw new Error(`the home page did not answer: ${error}`);
    return { status, location };
  }

  private async askHomePage(engine: DockerService, container: string, signal: AbortSignal) {
    const res = await engine.exec(container, HOME_PAGE_COMMAND, { timeoutMs: 8000, signal });
    const [status, location] = (res.stdout.trim().split('\n').pop() ?? '').split(' ');
    return {
      status: res.exitCode === 0 ? Number(status) || 0 : 0,
      location: location || null,
      error: res.stderr.trim().slice(0, 200) || `exit ${res.exitCode}`,
    };
  }

  private async nodeOf(where: { id: string } | { slug: string }): Promise<string> {
    const tenant = await this.prisma.tenant.findUniqueOrThrow({ where, select: { slug: true, nodeId: true } });
    if (!tenant.nodeId) throw new Error(`tenant ${tenant.slug} has no node: it was made before Berth ran on this Swarm`);
    return tenant.nodeId;
  }

  private dbService(tenantSlug: string): string {
    return names.dbContainer(this.config.BERTH_INSTANCE, tenantSlug);
  }

  /** A volume is in use until its task's container is removed, a moment after its service. */
  private async removeVolumeOnceFree(engine: DockerService, name: string, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.config.BERTH_STEP_TIMEOUT_MS;
    for (;;) {
      try {
        return await engine.removeVolume(name);
      } catch (e) {
        if (!/in use/i.test((e as Error).message) || Date.now() > deadline) throw e;
      }
      await delay(500, undefined, { signal });
    }
  }
}
