import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { DockerService, nodeAddress, type SwarmNode } from '../docker/docker.service';
import { NodeEngines } from '../docker/node-engines';
import { LABEL, MANAGED_BY } from '../docker/plan.types';
import { EventsService } from '../events/events.service';
import { mergeJobParams } from '../jobs/job-params';
import { BerthError, ErrorCode } from '../common/errors';
import { assertAdmin, type Principal } from '../common/principal';
import { JobKind, JobStatus, SiteStatus, TenantStatus } from '../generated/prisma/enums';
import type { Prisma } from '../generated/prisma/client';
import { chooseNode, free, offeredRoom, tenantReservation, type NodeRoom, type Room } from './placement';
import { tenantNodes } from './tenant-nodes';
import type { NodeEvacuationView, NodeView } from './dto/node.dto';
import { JobsService, toJobView } from '../jobs/jobs.service';

type Tx = Prisma.TransactionClient;

/** What a MOVE_TENANT job row carries; what an attempt decided is added, so the next attempt goes on from there. */
export interface TenantMoveParams {
  /** The node the tenant leaves. */
  fromNodeId: string;
  /** The admin key that asked. */
  actorKeyId: string;
  /**
   * The node is down: each carried site is put back from its latest backup (none: FAILED, not
   * carried), nothing is read or stopped on the node, and what is left there is kept (newer
   * than the backups): neither the move nor the workers' sweep removes it.
   */
  fromBackups?: boolean;
  /** The node the first attempt chose; the tenant's row names it from then on (both written in one transaction). */
  toNodeId?: string;
  /**
   * The sites the move carries (ids), fixed by its first attempt: a later attempt carries
   * the same ones, whatever was asked of them meanwhile (a deletion queued, then cancelled).
   */
  carried?: string[];
  /** Each site's checkpoint, taken on the node it leaves (backup ids by site id). */
  checkpoints?: Record<string, string>;
  /** The tenant's objects are being made on the new node: no attempt takes a checkpoint any more. */
  applied?: boolean;
  /** The sites whose checkpoint is put back on the new node (WordPress still stopped there). */
  putBack?: string[];
  /** Every site's content is on the new node: from here the move goes on, never back. */
  committed?: boolean;
  /** The sites dealt with after the commit: null when brought up, else why not (an attempt that follows skips them). */
  broughtUp?: Record<string, string | null>;
  /**
   * The node the move leaves behind was cleared (the old one after the commit: only the job's
   * end is left to record; the new one after moving back).
   */
  cleared?: boolean;
  /** Why the move failed, once moving the tenant back has begun: a later attempt goes on moving it back. */
  movingBack?: string;
  /**
   * The move ended FAILED with its tenant's objects left on the node it no longer uses (the
   * old one after the commit, the new one after moving back), and a worker's sweep has since
   * removed them (TenantMoveService.clearLeftovers; never for a move from backups).
   */
  leftoversCleared?: boolean;
  /** When the sweep may try those leftovers again, after a try that failed (ms since the epoch). */
  leftoversRetryAt?: number;
}

/** Node labels Berth reads and writes (on the Swarm node, so `docker node inspect` shows them too). */
export const NODE_LABEL = {
  /** "true": no new tenant. */
  cordoned: 'berth.cordoned',
  /** What Berth may book, when less than what the engine reports (room for the system, other work). */
  memoryMb: 'berth.memory-mb',
  cpus: 'berth.cpus',
} as const;

/** A serialisation point for placements, so two tenants created at once never book the same room. */
const PLACEMENT_LOCK = 0x6265_7274; // "bert"
/** How long a placement waits for a node's engine to list its volumes. */
const NODE_ASK_TIMEOUT_MS = 5000;
/** And for evacuations, so two at once never start two moves of one tenant. */
const EVACUATION_LOCK = 0x6576_6163; // "evac"

interface Booked {
  reserved: Room;
  tenants: string[];
  sites: number;
}

/**
 * The cluster's nodes as Berth sees them: Swarm's nodes (from the manager) with what the
 * tenants placed on each book; cordoning; and the choice of a new tenant's node.
 */
@Injectable()
export class NodesService {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly docker: DockerService,
    private readonly events: EventsService,
    private readonly jobs: JobsService,
    private readonly engines: NodeEngines,
  ) {}

  get cluster(): boolean {
    return this.config.BERTH_ENGINE === 'swarm';
  }

  async list(actor: Principal): Promise<NodeView[]> {
    assertAdmin(actor);
    this.assertCluster();
    const [nodes, booked] = await Promise.all([this.swarmNodes(), this.booked(this.prisma)]);
    return nodes.map((n) => view(n, booked.get(n.ID)));
  }

  async get(actor: Principal, id: string): Promise<NodeView> {
    return (await this.list(actor)).find((n) => n.id === id) ?? notFound(id);
  }

  /** Cordoned: the node takes no new tenant; its tenants stay and keep running (see README, "Fleet"). */
  async setCordoned(actor: Principal, id: string, cordoned: boolean): Promise<NodeView> {
    assertAdmin(actor);
    this.assertCluster();
    const node = (await this.swarmNodes()).find((n) => n.ID === id) ?? notFound(id);
    if ((node.Spec.Labels?.[NODE_LABEL.cordoned] === 'true') !== cordoned) {
      await this.docker.setNodeLabels(id, { [NODE_LABEL.cordoned]: cordoned ? 'true' : undefined });
      await this.events.record({
        type: cordoned ? 'node.cordoned' : 'node.uncordoned',
        message: `Node ${node.Description.Hostname} ${cordoned ? 'cordoned: it takes no new tenant' : 'uncordoned'}`,
        data: { nodeId: id, hostname: node.Description.Hostname },
        actorKeyId: actor.keyId,
      });
    }
    return this.get(actor, id);
  }

  /**
   * Evacuates a node: cordons it (no new tenant) and starts a MOVE_TENANT job for each of its
   * tenants (one already under way is reused), which moves the tenant to the node with the
   * most room through backup and restore. The node must be ready: its volumes are read there.
   */
  async evacuate(actor: Principal, id: string, fromBackups = false): Promise<NodeEvacuationView> {
    assertAdmin(actor);
    this.assertCluster();
    const node = (await this.swarmNodes()).find((n) => n.ID === id) ?? notFound(id);
    const ready = node.Status.State === 'ready';
    if (!ready && !fromBackups)
      throw new BerthError(
        ErrorCode.NODE_NOT_READY,
        `Node ${node.Description.Hostname} is ${node.Status.State}: an evacuation reads its tenants' databases and files there, so it must be up ` +
          "(or, losing what changed since each site's latest backup, evacuate it from those backups: fromBackups=true)",
      );
    if (ready && fromBackups)
      throw new BerthError(
        ErrorCode.NODE_READY,
        `Node ${node.Description.Hostname} is ready: evacuate it without fromBackups, which moves its tenants' data as it is now`,
      );
    await this.setCordoned(actor, id, true);
    const jobs = await this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${EVACUATION_LOCK}::bigint)`;
      const tenants = await tx.tenant.findMany({
        where: { nodeId: id, status: { not: TenantStatus.DELETING } },
        select: { id: true, slug: true },
      });
      const under = await tx.job.findMany({
        where: {
          tenantId: { in: tenants.map((t) => t.id) },
          kind: JobKind.MOVE_TENANT,
          status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] },
        },
      });
      const made = [];
      for (const t of tenants) {
        // A move of it off this node is under way already. One heading here (the tenant's row
        // names its new node) is not: another move follows it, and waits for it to end.
        // A move from backups is not one that reads the node: asked for, it follows (and waits for) that one.
        const existing = under.find((j) => {
          const p = j.params as unknown as TenantMoveParams;
          return j.tenantId === t.id && p.fromNodeId === id && !!p.fromBackups === fromBackups;
        });
        if (existing) {
          made.push(existing);
          continue;
        }
        const params: TenantMoveParams = { fromNodeId: id, actorKeyId: actor.keyId, ...(fromBackups ? { fromBackups: true } : {}) };
        made.push(
          await tx.job.create({
            data: { tenantId: t.id, kind: JobKind.MOVE_TENANT, generation: 0, params: params as unknown as Prisma.InputJsonValue },
          }),
        );
      }
      await this.events.record(
        {
          type: 'node.evacuating',
          message: `Node ${node.Description.Hostname} is being evacuated: ${tenants.length} tenant(s) move to other nodes${fromBackups ? ", from their sites' latest backups (the node is down)" : ''}`,
          data: {
            nodeId: id,
            hostname: node.Description.Hostname,
            tenants: tenants.map((t) => t.id),
            jobs: made.map((j) => j.id),
            fromBackups,
          },
          actorKeyId: actor.keyId,
        },
        tx,
      );
      return made;
    });
    for (const job of jobs) await this.jobs.enqueue(job);
    return { node: await this.get(actor, id), jobs: jobs.map(toJobView) };
  }

  /**
   * Chooses where a tenant that leaves `from` goes (the schedulable node with the most room
   * for what it books) and books it there: the tenant's row names the new node from now on,
   * so the next placement counts it. The move's job records the choice in the same
   * transaction: neither is ever written without the other. Throws NO_CAPACITY when no other
   * node has room.
   */
  async placeMove(tenantId: string, from: string, jobId: string): Promise<string> {
    // A node none of the tenant's moves touched holds nothing of it: volumes under its slug
    // there are a deleted tenant's of the same slug, which Docker would hand to this one.
    // Asked before the transaction (it holds the placement lock); such volumes only ever go.
    const { slug } = await this.prisma.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { slug: true } });
    const held = await this.heldFor(slug, (await tenantNodes(this.prisma, [tenantId])).get(tenantId));
    return this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${PLACEMENT_LOCK}::bigint)`;
      const [nodes, booked] = await Promise.all([this.swarmNodes(), this.booked(tx)]);
      const tenant = await tx.tenant.findUniqueOrThrow({
        where: { id: tenantId },
        select: {
          slug: true,
          maxMemoryMb: true,
          maxCpus: true,
          sites: { where: { status: { not: SiteStatus.DELETED } }, select: { memoryMb: true, cpus: true } },
        },
      });
      const need = tenantReservation(this.dbRoom, tenant.sites, { memoryMb: tenant.maxMemoryMb, cpus: tenant.maxCpus });
      // What an evacuation from backups left of the tenant on its dead node is kept there for
      // good (it may be newer than the backups): a move onto that node would write over it
      // (the same volumes, emptied and filled again), so such nodes are not chosen.
      const kept = new Set(
        (
          await tx.$queryRaw<{ node: string }[]>`
            SELECT DISTINCT params->>'fromNodeId' AS node FROM "Job"
            WHERE "tenantId" = ${tenantId}::uuid AND kind = 'MOVE_TENANT' AND id <> ${jobId}::uuid
              AND params->>'fromBackups' = 'true' AND params->>'committed' = 'true'`
        ).map((r) => r.node),
      );
      const rooms = nodes.filter((n) => n.ID !== from && !kept.has(n.ID)).map((n) => roomOf(n, booked.get(n.ID)));
      const chosen = chooseNode(
        rooms.filter((r) => !held.has(r.id)),
        need,
      );
      if (!chosen)
        throw new BerthError(
          ErrorCode.NO_CAPACITY,
          `No other node has room for tenant ${tenant.slug} (${fmt(need)}): ${offered(rooms) || 'the cluster has no other node'}` +
            (kept.size
              ? `; not ${[...kept].join(', ')}, which hold${kept.size === 1 ? 's' : ''} what an evacuation from backups left of the tenant`
              : '') +
            (held.size ? `; not ${[...held.values()].join('; ')}` : ''),
          { need },
        );
      await tx.tenant.update({ where: { id: tenantId }, data: { nodeId: chosen.id } });
      if (!(await mergeJobParams(tx, jobId, { toNodeId: chosen.id } satisfies Partial<TenantMoveParams>)))
        throw new Error(`job ${jobId} is gone: the node chosen for it could not be saved`);
      return chosen.id;
    });
  }

  /** The hostname of a node, for messages (its id when the Swarm no longer knows it). */
  async hostname(id: string): Promise<string> {
    return (await this.swarmNodes().catch(() => [])).find((n) => n.ID === id)?.Description.Hostname ?? id;
  }

  /**
   * Chooses the node of a tenant being created, inside its transaction: the placement lock
   * is held until the transaction ends, so the next placement sees this one's booking. Nodes
   * in `held` (see {@link heldFor}, asked before the transaction) are not chosen.
   */
  async place(tx: Tx, need: Room, held: Map<string, string>): Promise<string> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${PLACEMENT_LOCK}::bigint)`;
    const [nodes, booked] = await Promise.all([this.swarmNodes(), this.booked(tx)]);
    const rooms = nodes.map((n) => roomOf(n, booked.get(n.ID)));
    const chosen = chooseNode(
      rooms.filter((r) => !held.has(r.id)),
      need,
    );
    if (!chosen) {
      throw new BerthError(
        ErrorCode.NO_CAPACITY,
        `No node has room for a new tenant (${fmt(need)}: its database server and one site at its limits). ${offered(rooms) || 'The cluster has no node.'}` +
          (held.size ? ` Not ${[...held.values()].join('; ')}.` : ''),
        { need },
      );
    }
    return chosen.id;
  }

  /**
   * The nodes that must not take a tenant of `slug`, with why: those holding volumes under
   * that slug (a new tenant has none, so they are what a deleted tenant of that slug left on a
   * node that was down when it was deleted, and Docker would hand the new tenant's database
   * server that tenant's data directory; the reconciler removes them once it has seen them),
   * and those whose engine does not answer. Every ready node but `its` (the tenant's own) is
   * asked at once, outside any transaction.
   */
  async heldFor(slug: string, its: Set<string> = new Set()): Promise<Map<string, string>> {
    if (!this.config.BERTH_SWARM_NODE_ENGINE) return new Map();
    const asked = (await this.swarmNodes()).filter((n) => n.Status.State === 'ready' && !its.has(n.ID));
    const answers = await Promise.all(asked.map(async (n) => [n, await this.leftoversOf(slug, n)] as const));
    return new Map(answers.filter(([, why]) => why).map(([n, why]) => [n.ID, `${n.Description.Hostname}: ${why}`]));
  }

  /**
   * Why a node cannot take a tenant of `slug` that has nothing there (volumes under that slug
   * there, or an engine that cannot be asked), or null.
   */
  private async leftoversOf(slug: string, node: SwarmNode): Promise<string | null> {
    const scope = { [LABEL.managedBy]: MANAGED_BY, [LABEL.instance]: this.config.BERTH_INSTANCE, [LABEL.tenant]: slug };
    try {
      const left = await this.engines.engineOf(node.ID, node).listVolumes(scope, AbortSignal.timeout(NODE_ASK_TIMEOUT_MS));
      return left.length
        ? `it holds ${left.map((v) => v.Name).join(', ')} under slug ${slug}, not this tenant's (a deleted tenant's of that slug)`
        : null;
    } catch (e) {
      return `its engine did not list its volumes: ${(e as Error).message}`;
    }
  }

  private get dbRoom(): Room {
    return { memoryMb: this.config.BERTH_DB_MEMORY_MB, cpus: this.config.BERTH_DB_CPUS };
  }

  private assertCluster(): void {
    if (!this.cluster)
      throw new BerthError(
        ErrorCode.NOT_A_CLUSTER,
        'Berth runs on one Docker Engine (BERTH_ENGINE=docker): there are no nodes to list or cordon',
      );
  }

  private async swarmNodes(): Promise<SwarmNode[]> {
    try {
      return (await this.docker.listNodes()).sort((a, b) => a.Description.Hostname.localeCompare(b.Description.Hostname));
    } catch (e) {
      throw new BerthError(ErrorCode.UNAVAILABLE, `The Swarm manager did not list its nodes: ${(e as Error).message}`);
    }
  }

  /** What the tenants on each node book: their database servers and their sites at their limits. */
  private async booked(db: Tx | PrismaService): Promise<Map<string, Booked>> {
    const tenants = await db.tenant.findMany({
      where: { nodeId: { not: null } },
      select: {
        id: true,
        nodeId: true,
        maxMemoryMb: true,
        maxCpus: true,
        sites: { where: { status: { not: SiteStatus.DELETED } }, select: { memoryMb: true, cpus: true } },
      },
    });
    const dbRoom = this.dbRoom;
    const byNode = new Map<string, Booked>();
    for (const t of tenants) {
      const r = tenantReservation(dbRoom, t.sites, { memoryMb: t.maxMemoryMb, cpus: t.maxCpus });
      const b = byNode.get(t.nodeId as string) ?? { reserved: { memoryMb: 0, cpus: 0 }, tenants: [], sites: 0 };
      b.reserved = { memoryMb: b.reserved.memoryMb + r.memoryMb, cpus: Math.round((b.reserved.cpus + r.cpus) * 1000) / 1000 };
      b.tenants.push(t.id);
      b.sites += t.sites.length;
      byNode.set(t.nodeId as string, b);
    }
    return byNode;
  }
}

const notFound = (id: string): never => {
  throw new BerthError(ErrorCode.NODE_NOT_FOUND, `Node ${id} was not found`);
};

const fmt = (r: Room) => `${r.memoryMb} MiB, ${r.cpus} CPUs`;

/** What each node offers, for a refusal's message. */
const offered = (rooms: NodeRoom[]) =>
  rooms.map((r) => `${r.hostname}: ${r.schedulable ? `${fmt(free(r))} free` : 'not schedulable'}`).join('; ');

function capacityOf(n: SwarmNode): Room {
  const labels = n.Spec.Labels ?? {};
  return offeredRoom(
    { memoryMb: labels[NODE_LABEL.memoryMb], cpus: labels[NODE_LABEL.cpus] },
    { memoryMb: Math.floor(n.Description.Resources.MemoryBytes / 1024 / 1024), cpus: n.Description.Resources.NanoCPUs / 1e9 },
  );
}

function roomOf(n: SwarmNode, b: Booked | undefined): NodeRoom {
  const cordoned = n.Spec.Labels?.[NODE_LABEL.cordoned] === 'true';
  return {
    id: n.ID,
    hostname: n.Description.Hostname,
    schedulable: n.Status.State === 'ready' && n.Spec.Availability === 'active' && !cordoned,
    capacity: capacityOf(n),
    reserved: b?.reserved ?? { memoryMb: 0, cpus: 0 },
  };
}

function view(n: SwarmNode, b: Booked | undefined): NodeView {
  const room = roomOf(n, b);
  return {
    id: n.ID,
    hostname: room.hostname,
    address: nodeAddress(n),
    role: n.Spec.Role,
    state: n.Status.State,
    availability: n.Spec.Availability,
    cordoned: n.Spec.Labels?.[NODE_LABEL.cordoned] === 'true',
    schedulable: room.schedulable,
    labels: n.Spec.Labels ?? {},
    capacity: room.capacity,
    reserved: room.reserved,
    tenants: b?.tenants ?? [],
    sites: b?.sites ?? 0,
  };
}
