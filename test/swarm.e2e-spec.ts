/**
 * Berth on a real Docker Swarm: three Docker Engines, each a Docker-in-Docker container
 * (scripts/swarm.sh), one manager and two workers. Set up and torn down by this suite.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { dockerOptions, readEngineTls, type EngineTls } from '../src/docker/docker-options';
import { DockerService } from '../src/docker/docker.service';
import { SwarmApplyService } from '../src/docker/swarm-apply.service';
import { LABEL, MANAGED_BY, type ContainerSpec } from '../src/docker/plan.types';
import type { BerthConfig } from '../src/config/config';
import { names, planTenant, type PlanSettings, type TenantFacts } from '../src/sites/site-plan';
import { makeCa, makeClient } from './certs';
import { auth, gql, startHarness, uniqueSlug, waitForJob, type Harness } from './harness';
import { BASE_DOMAIN, TEST_INSTANCE } from './env';
import { reconcilerPasses, testRedis } from './suite-helpers';
import { eventually, TestWebhookReceiver } from './receivers';

// The applier is used here without Nest (whose ESM build jest cannot load): its decorators are no-ops.
jest.mock('@nestjs/common', () => jest.requireActual('./nest-common-stub'));

const run = promisify(execFile);
/** The images the cluster's services run: loaded into every node (there is no registry). */
const NODE_IMAGES = 'berth/busybox:latest berth/mariadb:10.11 berth/stub-wordpress:latest berth/caddy:2';
const swarm = async (...args: string[]) =>
  (await run('bash', ['scripts/swarm.sh', ...args], { maxBuffer: 1 << 24, env: { ...process.env, BERTH_SWARM_IMAGES: NODE_IMAGES } }))
    .stdout;

interface NodeBody {
  id: string;
  hostname: string;
  state: string;
  role: string;
  availability: string;
  cordoned: boolean;
  schedulable: boolean;
  address: string;
  labels: Record<string, string>;
  capacity: { memoryMb: number; cpus: number };
  reserved: { memoryMb: number; cpus: number };
  tenants: string[];
  sites: number;
}

// Small rooms, so a handful of tenants fill the cluster: each tenant books its database
// server (256 MiB, 0.25 CPU) and one site at its ceiling (512 MiB, 0.25 CPU): 768 MiB, 0.5 CPU.
const ROOM = { 'berth-swarm-1': 3000, 'berth-swarm-2': 2000, 'berth-swarm-3': 1000 };
const TENANT = { maxMemoryMb: 512, maxCpus: 0.25 };

/** Site jobs at once on each node's engine. */
const SLOTS = 2;
let h: Harness;
let manager: Docker;
/** The client's certificate and the cluster's CA (scripts/swarm.sh makes them): the nodes' engines answer over TLS only. */
let certs: string;
let tls: EngineTls;
/** A node's own engine (by its address), over TLS as Berth reaches it. */
const engineAt = (address: string) => new Docker(dockerOptions(`tcp://${address}:2376`, tls));
/** The same, as Berth's adapter. */
const serviceAt = (address: string) =>
  new DockerService({
    DOCKER_HOST: `tcp://${address}:2376`,
    DOCKER_TLS_VERIFY: true,
    DOCKER_CERT_PATH: certs,
    BERTH_STEP_TIMEOUT_MS: 60_000,
  } as BerthConfig);
let byHost: Record<string, NodeBody>;
let edgeAddress: string;

async function nodes(key = h.admin): Promise<NodeBody[]> {
  const res = await h.http.get('/v1/nodes').set(auth(key));
  expect(res.status).toBe(200);
  return res.body;
}

async function newTenant(slug = uniqueSlug('sw')) {
  return h.http
    .post('/v1/tenants')
    .set(auth(h.admin))
    .send({ slug, name: `Tenant ${slug}`, contactEmail: `ops@${slug}.example`, ...TENANT });
}

async function nodeOf(tenantId: string): Promise<string> {
  const { rows } = await h.db.query<{ nodeId: string }>('SELECT "nodeId" FROM "Tenant" WHERE id = $1', [tenantId]);
  return rows[0].nodeId;
}

beforeAll(async () => {
  const out = await swarm('up');
  const url = /export BERTH_SWARM_MANAGER=(\S+)/.exec(out)?.[1];
  if (!url) throw new Error(`scripts/swarm.sh up printed no manager: ${out}`);
  certs = /export BERTH_SWARM_CERT_PATH=(\S+)/.exec(out)?.[1] as string;
  tls = readEngineTls(certs);
  manager = new Docker(dockerOptions(url, tls));
  // What Berth may book on each node (the engines report the host's memory, three times over).
  for (const n of await manager.listNodes()) {
    const node = manager.getNode(n.ID);
    const info = await node.inspect();
    const mb = ROOM[info.Description.Hostname as keyof typeof ROOM];
    const labels = { ...(info.Spec.Labels ?? {}), 'berth.memory-mb': String(mb), 'berth.cpus': '2' };
    delete labels['berth.cordoned'];
    await node.update({ _query: { version: info.Version.Index }, _body: { ...info.Spec, Labels: labels } });
  }
  // The edge: a Caddy service on node 1 (scripts/swarm.sh edge), on the edge network.
  edgeAddress = /export BERTH_EDGE_ADDRESS=(\S+)/.exec(await swarm('edge'))?.[1] as string;
  await h?.stop();
  h = await startHarness({
    BERTH_ENGINE: 'swarm',
    DOCKER_HOST: url,
    DOCKER_TLS_VERIFY: '1',
    DOCKER_CERT_PATH: certs,
    BERTH_DB_MEMORY_MB: '256',
    BERTH_DB_CPUS: '0.25',
    // The nodes' own engines, over TLS with the same client certificate as the manager.
    BERTH_SWARM_NODE_ENGINE: 'tcp://{address}:2376',
    BERTH_EDGE_ADMIN_URL: `http://${edgeAddress}:2019`,
    BERTH_EDGE_ADMIN_LISTEN: ':2019',
    BERTH_EDGE_ADDRESS: edgeAddress,
    BERTH_EDGE_HTTP_PORT: '80',
    BERTH_EDGE_HTTPS_PORT: '443',
    // The edge in the cluster cannot reach this process's ask endpoint on loopback.
    BERTH_TLS: 'off',
    BERTH_RECONCILE_INTERVAL_MS: '2000',
    // Probes alone would also report a dead node's sites: here only the node watch may.
    BERTH_PROBE_FAILURES: '100',
    BERTH_METRICS_TOKEN: METRICS_TOKEN,
    BERTH_ORPHAN_GRACE_MS: '1500',
    BERTH_ENGINE_SLOTS: String(SLOTS),
  });
  // Tenants of earlier runs booked nothing on this fresh cluster: forget their nodes.
  await h.db.query('UPDATE "Tenant" SET "nodeId" = NULL');
  // A kept cluster (BERTH_SWARM_KEEP=1) holds an earlier run's services and networks, whose
  // subnets this run's tenants (a fresh database) would be given again.
  const earlier = { filters: { label: [`berth.instance=${TEST_INSTANCE}`] } };
  for (const s of await manager.listServices(earlier)) await manager.getService(s.ID).remove();
  for (const s of await manager.listSecrets(earlier)) await manager.getSecret(s.ID).remove();
  await eventually(
    async () => {
      for (const n of await manager.listNetworks(earlier)) await manager.getNetwork(n.Id).remove();
      return (await manager.listNetworks(earlier)).length === 0 ? true : undefined;
    },
    "an earlier run's networks to go",
    60_000,
    1000,
  ).catch(() => undefined);
  byHost = Object.fromEntries((await nodes()).map((n) => [n.hostname, n]));
}, 600_000);

afterAll(async () => {
  await h?.stop();
  if (!process.env.BERTH_SWARM_KEEP) await swarm('down');
}, 300_000);

describe('Berth on a three-node Swarm', () => {
  it('lists the nodes with their state, role, capacity and what is booked on them; only for admins', async () => {
    const list = await nodes();
    expect(list.map((n) => n.hostname)).toEqual(['berth-swarm-1', 'berth-swarm-2', 'berth-swarm-3']);
    for (const n of list) {
      expect(n).toMatchObject({ state: 'ready', availability: 'active', cordoned: false, schedulable: true, tenants: [], sites: 0 });
      expect(n.capacity).toEqual({ memoryMb: ROOM[n.hostname as keyof typeof ROOM], cpus: 2 });
      expect(n.reserved).toEqual({ memoryMb: 0, cpus: 0 });
      expect(n.address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    }
    expect(list.map((n) => n.role)).toEqual(['manager', 'worker', 'worker']);
    const one = await h.http.get(`/v1/nodes/${list[1].id}`).set(auth(h.admin));
    expect(one.body).toMatchObject({ id: list[1].id, hostname: 'berth-swarm-2' });
    expect((await h.http.get('/v1/nodes/nope').set(auth(h.admin))).body.code).toBe('NODE_NOT_FOUND');

    // A tenant's own key sees no node, over REST and GraphQL.
    const t = await newTenant();
    expect(t.status).toBe(201);
    const key = (await h.http.post(`/v1/tenants/${t.body.id}/api-keys`).set(auth(h.admin)).send({})).body.key as string;
    const denied = await h.http.get('/v1/nodes').set(auth(key));
    expect([denied.status, denied.body.code]).toEqual([403, 'FORBIDDEN']);
    expect((await h.http.post(`/v1/nodes/${list[0].id}/cordon`).set(auth(key))).status).toBe(403);
    expect((await gql(h, key, '{ nodes { id } }')).errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const g = await gql<{ nodes: { hostname: string; capacity: { memoryMb: number } }[] }>(
      h,
      h.admin,
      '{ nodes { hostname capacity { memoryMb } } }',
    );
    expect(g.data?.nodes.map((n) => n.capacity.memoryMb)).toEqual([3000, 2000, 1000]);
  });

  it("reaches every node's engine over TLS only: a client without the CA's certificate, a plain request, port 2375 all refused", async () => {
    const list = await nodes();
    for (const n of list) {
      // Positive control: Berth's certificate and CA, as Berth itself uses them (the listing above came through them).
      expect((await engineAt(n.address).info()).Swarm.LocalNodeState).toBe('active');
      const refused = async (docker: Docker) => {
        // (The error comes from node's TLS or HTTP layer: another realm than jest's Error.)
        const message = await docker.info().then(
          () => 'answered',
          (e: unknown) => String((e as Error).message),
        );
        expect(message).not.toBe('answered');
        return message;
      };
      // No client certificate: the engine ends the handshake.
      expect(await refused(new Docker({ host: n.address, port: 2376, protocol: 'https', ca: tls.ca }))).toMatch(
        /bad certificate|certificate required|ECONNRESET/,
      );
      // The engine's certificate is checked too: without the cluster's CA, Berth would not trust it.
      expect(await refused(new Docker({ host: n.address, port: 2376, protocol: 'https', cert: tls.cert, key: tls.key }))).toMatch(
        /self[- ]signed|unable to (get|verify)/i,
      );
      // Plain HTTP on the TLS port, and the plain port of the earlier test cluster.
      expect(await refused(new Docker({ host: n.address, port: 2376, protocol: 'http' }))).toMatch(/HTTP request to an HTTPS server/);
      expect(await refused(new Docker({ host: n.address, port: 2375, protocol: 'http' }))).toMatch(/ECONNREFUSED/);
    }
  });

  it('takes a renewed client certificate without a restart: refused with one the cluster did not sign, answered once the right one is in place', async () => {
    const work = await mkdtemp(join(tmpdir(), 'berth-renew-'));
    const dir = join(work, 'certs');
    try {
      await mkdir(dir);
      // A client identity from a CA of its own: the node's engine does not accept it.
      const stranger = makeClient(work, 'stranger', makeCa(work, 'other-ca'));
      await copyFile(join(certs, 'ca.pem'), join(dir, 'ca.pem'));
      await copyFile(stranger.cert, join(dir, 'cert.pem'));
      await copyFile(stranger.key, join(dir, 'key.pem'));
      const [node] = await nodes();
      const engine = new DockerService({
        DOCKER_HOST: `tcp://${node.address}:2376`,
        DOCKER_TLS_VERIFY: true,
        DOCKER_CERT_PATH: dir,
        BERTH_STEP_TIMEOUT_MS: 30_000,
      } as BerthConfig);
      const outcome = () =>
        engine.ping().then(
          () => 'answered',
          (e: unknown) => String((e as Error).message),
        );
      expect(await outcome()).toMatch(/unknown ca|bad certificate|certificate|ECONNRESET|hang up/i);
      expect(engine.reloadTls(true)).toBe(false); // nothing changed yet
      // The renewal: the cluster's own client certificate and key put in place.
      await copyFile(join(certs, 'key.pem'), join(dir, 'key.pem'));
      await copyFile(join(certs, 'cert.pem'), join(dir, 'cert.pem'));
      expect(engine.reloadTls(true)).toBe(true);
      expect(await outcome()).toBe('answered');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it("removes a service, its secret, its overlay network and a node's volume labelled as Berth's that no tenant claims, and reports each; claimed ones stay", async () => {
    const mine = (tenant: string) => ({ [LABEL.managedBy]: MANAGED_BY, [LABEL.instance]: TEST_INSTANCE, [LABEL.tenant]: tenant });
    const gone = (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (e: { statusCode?: number }) => e.statusCode,
      );
    const worker = (await manager.listNodes()).find((n) => n.Spec?.Role === 'worker') as { ID: string; Status: { Addr: string } };
    const nodeEngine = engineAt(worker.Status.Addr);
    // The controls first, so that every pass that sees the orphans has seen them for longer:
    // a secret and a volume of a tenant that exists (made by the first test) are claimed.
    // Its volume is claimed on its own node, and on another one too when made after the
    // tenant was (a node that rejoined the Swarm under a new id); the swarm test of an
    // evacuated, deleted tenant whose slug is taken again covers one made before.
    const { rows } = await h.db.query<{ slug: string; nodeId: string }>(
      'SELECT slug, "nodeId" FROM "Tenant" ORDER BY "createdAt" DESC LIMIT 1',
    );
    const listed = await manager.listNodes();
    const homeEngine = engineAt(listed.find((n) => n.ID === rows[0].nodeId)?.Status?.Addr as string);
    const away = listed.find((n) => n.ID !== rows[0].nodeId) as { ID: string; Status: { Addr: string } };
    const awayEngine = engineAt(away.Status.Addr);
    const kept = (await manager.createSecret({
      Name: `${rows[0].slug}-kept-${randomBytes(2).toString('hex')}`,
      Labels: mine(rows[0].slug),
      Data: Buffer.from('y').toString('base64'),
    })) as { id: string };
    const keptVolume = (await homeEngine.createVolume({
      Name: `${rows[0].slug}-kept-${randomBytes(2).toString('hex')}`,
      Labels: mine(rows[0].slug),
    })) as {
      name: string;
    };
    const strayVolume = (await awayEngine.createVolume({
      Name: `${rows[0].slug}-stray-${randomBytes(2).toString('hex')}`,
      Labels: mine(rows[0].slug),
    })) as {
      name: string;
    };
    const ghost = mine(`ghost-${randomBytes(3).toString('hex')}`);
    const net = (await manager.createNetwork({ Name: `${ghost[LABEL.tenant]}-net`, Driver: 'overlay', Labels: ghost })) as unknown as {
      id: string;
    };
    const secret = (await manager.createSecret({
      Name: `${ghost[LABEL.tenant]}-pw`,
      Labels: ghost,
      Data: Buffer.from('x').toString('base64'),
    })) as {
      id: string;
    };
    const service = (await manager.createService({
      Name: `${ghost[LABEL.tenant]}-svc`,
      Labels: ghost,
      TaskTemplate: {
        ContainerSpec: {
          Image: 'berth/busybox:latest',
          Command: ['sleep', '3600'],
          Secrets: [
            { SecretID: secret.id, SecretName: `${ghost[LABEL.tenant]}-pw`, File: { Name: 'pw', UID: '0', GID: '0', Mode: 0o400 } },
          ],
        },
        Networks: [{ Target: net.id }],
      },
      Mode: { Replicated: { Replicas: 1 } },
    })) as { id: string };
    const volume = (await nodeEngine.createVolume({ Name: `${ghost[LABEL.tenant]}-files`, Labels: ghost })) as { name: string };
    try {
      const keys = [`service:${service.id}`, `secret:${secret.id}`, `network:${net.id}`, `volume:${worker.ID}:${volume.name}`];
      const reported = async () =>
        (
          await h.db.query<{ object: string }>(
            `SELECT data->>'object' AS object FROM "Event" WHERE type = 'orphan.removed' AND data->>'object' = ANY($1)`,
            [keys],
          )
        ).rows.map((r) => r.object);
      await eventually(
        async () => ((await reported()).length === keys.length ? true : undefined),
        'the orphans to be removed and reported',
        90_000,
        1000,
      );
      expect((await reported()).sort()).toEqual([...keys].sort());
      expect(await gone(manager.getService(service.id).inspect())).toBe(404);
      expect(await gone(manager.getSecret(secret.id).inspect())).toBe(404);
      expect(await gone(manager.getNetwork(net.id).inspect())).toBe(404);
      expect(await gone(nodeEngine.getVolume(volume.name).inspect())).toBe(404);
      // The same passes, past the grace for them too, left the claimed ones alone.
      expect(await gone(manager.getSecret(kept.id).inspect())).toBe(200);
      expect(await gone(homeEngine.getVolume(keptVolume.name).inspect())).toBe(200);
      expect(await gone(awayEngine.getVolume(strayVolume.name).inspect())).toBe(200);
    } finally {
      await manager
        .getSecret(kept.id)
        .remove()
        .catch(() => undefined);
      await homeEngine
        .getVolume(keptVolume.name)
        .remove()
        .catch(() => undefined);
      await awayEngine
        .getVolume(strayVolume.name)
        .remove()
        .catch(() => undefined);
      await manager
        .getService(service.id)
        .remove()
        .catch(() => undefined);
    }
  });

  it('places each tenant on the node with the most room, and refuses cleanly when no node has room', async () => {
    // The tenant made by the test above is on berth-swarm-1 (3000 MiB, the most room).
    const placed: string[] = [];
    for (let i = 0; i < 5; i++) {
      const t = await newTenant();
      expect(t.status).toBe(201);
      placed.push(await nodeOf(t.body.id));
    }
    const host = (id: string) => Object.values(byHost).find((n) => n.id === id)?.hostname;
    // Free memory before each: 1:2232 2:2000 3:1000 -> 1; 1:1464 2:2000 -> 2; 1:1464 2:1232 -> 1;
    // 1:696 2:1232 3:1000 -> 2; 1:696 2:464 3:1000 -> 3.
    expect(placed.map(host)).toEqual(['berth-swarm-1', 'berth-swarm-2', 'berth-swarm-1', 'berth-swarm-2', 'berth-swarm-3']);
    const list = await nodes();
    expect(list.map((n) => [n.reserved.memoryMb, n.tenants.length])).toEqual([
      [2304, 3],
      [1536, 2],
      [768, 1],
    ]);
    expect(list[0].reserved.cpus).toBe(1.5);

    // Now no node has 768 MiB free: 696, 464, 232.
    const slug = uniqueSlug('full');
    const refused = await newTenant(slug);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('NO_CAPACITY');
    expect(refused.body.detail).toMatch(/berth-swarm-1: 696 MiB, 0.5 CPUs free/);
    const { rows } = await h.db.query('SELECT id FROM "Tenant" WHERE slug = $1', [slug]);
    expect(rows).toEqual([]);
    // Positive control: a smaller tenant (256 + 256 MiB) still fits, on the node with the most room.
    const small = await h.http
      .post('/v1/tenants')
      .set(auth(h.admin))
      .send({ slug: uniqueSlug('sm'), name: 'Small', contactEmail: 'ops@small.example', maxMemoryMb: 256, maxCpus: 0.25 });
    expect(small.status).toBe(201);
    expect(host(await nodeOf(small.body.id))).toBe('berth-swarm-1');
  });

  it('books concurrent placements one at a time: of six tenants asked for at once, only those with room are made', async () => {
    // Room left: 1:184 2:464 3:232 MiB. Raise node 3 to 3000 MiB: 2232 free, room for two tenants of 768.
    await setLabel(byHost['berth-swarm-3'].id, 'berth.memory-mb', '3000');
    const answers = await Promise.all(Array.from({ length: 6 }, () => newTenant()));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([201, 201, 409, 409, 409, 409]);
    const n3 = (await nodes()).find((n) => n.hostname === 'berth-swarm-3') as NodeBody;
    expect(n3.reserved.memoryMb).toBe(768 * 3);
    expect(n3.reserved.memoryMb).toBeLessThanOrEqual(n3.capacity.memoryMb);
  });

  it('a cordoned node takes no new tenant, over REST and GraphQL, and says so in the Swarm too', async () => {
    const n3 = byHost['berth-swarm-3'];
    await setLabel(n3.id, 'berth.memory-mb', '6000'); // node 3 alone has room again: for one tenant (by CPUs)
    const cordoned = await h.http.post(`/v1/nodes/${n3.id}/cordon`).set(auth(h.admin));
    expect(cordoned.status).toBe(200);
    expect(cordoned.body).toMatchObject({ cordoned: true, schedulable: false, state: 'ready' });
    expect((await manager.getNode(n3.id).inspect()).Spec.Labels?.['berth.cordoned']).toBe('true');
    const refused = await newTenant();
    expect([refused.status, refused.body.code]).toEqual([409, 'NO_CAPACITY']);
    expect(refused.body.detail).toMatch(/berth-swarm-3: not schedulable/);

    const g = await gql<{ uncordonNode: { cordoned: boolean; schedulable: boolean } }>(
      h,
      h.admin,
      'mutation($id: ID!) { uncordonNode(id: $id) { cordoned schedulable } }',
      { id: n3.id },
    );
    expect(g.data?.uncordonNode).toEqual({ cordoned: false, schedulable: true });
    const t = await newTenant();
    expect(t.status).toBe(201);
    expect(await nodeOf(t.body.id)).toBe(n3.id);
    const events = await h.http.get('/v1/events?type=node.cordoned&limit=10').set(auth(h.admin));
    expect(events.body.some((e: { data: { nodeId: string } }) => e.data.nodeId === n3.id)).toBe(true);
  });

  it('a node that goes down is shown down within 30 s and takes no tenant; back up, it is ready again', async () => {
    const n3 = byHost['berth-swarm-3'];
    await setLabel(n3.id, 'berth.cpus', '8'); // node 3 alone has room again
    await swarm('kill', '3');
    const killed = Date.now();
    await eventually(
      async () => ((await nodes()).find((n) => n.id === n3.id)?.state === 'down' ? true : undefined),
      'node 3 down',
      30_000,
      500,
    );
    const downAfter = Date.now() - killed;
    const down = (await nodes()).find((n) => n.id === n3.id) as NodeBody;
    expect(down.schedulable).toBe(false);
    const refused = await newTenant();
    expect([refused.status, refused.body.code]).toEqual([409, 'NO_CAPACITY']);
    expect(refused.body.detail).toMatch(/berth-swarm-3: not schedulable/);
    await swarm('start', '3');
    await eventually(
      async () => ((await nodes()).find((n) => n.id === n3.id)?.state === 'ready' ? true : undefined),
      'node 3 ready',
      60_000,
      500,
    );
    const t = await newTenant();
    expect(t.status).toBe(201);
    expect(await nodeOf(t.body.id)).toBe(n3.id);
    console.log(`node 3 was shown down ${downAfter} ms after it was killed`);
  }, 120_000);
});

/** The running task of a service: its node and container. */
const running = (service: string, notTask?: string) =>
  eventually(
    async () => {
      const tasks = await manager.listTasks({ filters: { service: [service], 'desired-state': ['running'] } });
      const t = tasks.find((x) => x.Status?.State === 'running' && x.ID !== notTask);
      return t ? { id: t.ID as string, node: t.NodeID as string, container: t.Status.ContainerStatus.ContainerID as string } : undefined;
    },
    `a running task of ${service}`,
    120_000,
    500,
  );

/** Runs `cmd` once as a one-off task on `network`, pinned to `node`: did it exit 0? */
async function probe(network: string, node: string, cmd: string): Promise<boolean> {
  const name = `probe-${randomBytes(3).toString('hex')}`;
  await manager.createService({
    Name: name,
    Labels: { 'berth.probe': '1' },
    TaskTemplate: {
      ContainerSpec: { Image: 'berth/busybox:latest', Command: ['sh', '-c', cmd] },
      RestartPolicy: { Condition: 'none' },
      Placement: { Constraints: [`node.id==${node}`] },
      Networks: [{ Target: network }],
    },
    Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
    EndpointSpec: { Mode: 'dnsrr' },
  });
  try {
    const state = await eventually(
      async () => {
        const [t] = await manager.listTasks({ filters: { service: [name] } });
        return ['complete', 'failed', 'rejected'].includes(t?.Status?.State) ? (t.Status.State as string) : undefined;
      },
      `probe ${cmd}`,
      60_000,
      300,
    );
    return state === 'complete';
  } finally {
    await manager.getService(name).remove();
  }
}
/** Reads the MariaDB greeting from host:3306 (a timeout or a refusal reads nothing). */
const reachesDb = (host: string) => `nc -w 4 ${host} 3306 </dev/null 2>&1 | grep -q MariaDB`;

const METRICS_TOKEN = 'berth-e2e-swarm-metrics-token';

const passes = () => reconcilerPasses(h, METRICS_TOKEN);

async function setLabel(id: string, key: string, value: string) {
  const node = manager.getNode(id);
  const info = await node.inspect();
  await node.update({ _query: { version: info.Version.Index }, _body: { ...info.Spec, Labels: { ...info.Spec.Labels, [key]: value } } });
}

/**
 * The tenant's objects as Swarm services, applied by Berth's Swarm applier straight to the
 * cluster, as a job does, with the same plans.
 */
describe("a tenant's database server as a Swarm service", () => {
  const settings: PlanSettings = {
    instance: 'swarmtest',
    wordpressImage: 'berth/stub-wordpress:latest',
    dbImage: 'berth/mariadb:10.11',
    wordpressDataPath: '/var/www/html',
    publishAddress: '127.0.0.1',
    subnetPool: '10.96.0.0/16',
    subnetPrefix: 24,
    pidsLimit: 256,
    dbMemoryMb: 256,
    dbCpus: 0.25,
  };
  const facts = (slug: string, index: number, password: string): TenantFacts => ({
    slug,
    networkIndex: index,
    dbRootPassword: password,
    dbRootPasswordSealed: `sealed-${password}`,
    maxMemoryMb: 256,
    maxCpus: 0.25,
  });
  const aliases = (c: ContainerSpec) => (c.create.Labels['berth.role'] === 'db' ? ['mysql'] : []);
  let applier: SwarmApplyService;
  let engines: Record<string, Docker>;
  const a = facts(`swa${randomBytes(2).toString('hex')}`, 1, 'root-a-0123456789');
  const b = facts(`swb${randomBytes(2).toString('hex')}`, 2, 'root-b-0123456789');

  beforeAll(async () => {
    const docker = serviceAt(
      (await manager.listNodes()).find((n) => n.ManagerStatus?.Leader)?.ManagerStatus?.Addr?.split(':')[0] as string,
    );
    applier = new SwarmApplyService(docker, { BERTH_INSTANCE: 'swarmtest', BERTH_OVERLAY_MTU: undefined, BERTH_STEP_TIMEOUT_MS: 60_000 });
    // What an interrupted earlier run left on a kept cluster (BERTH_SWARM_KEEP=1).
    const mine = { filters: { label: ['berth.instance=swarmtest'] } };
    for (const s of await manager.listServices(mine)) await manager.getService(s.ID).remove();
    await eventually(
      async () => (await manager.listTasks({ filters: { ...mine.filters, 'desired-state': ['running'] } })).length === 0,
      'the leftover tasks to go',
      60_000,
      500,
    );
    for (const s of await manager.listSecrets(mine)) await manager.getSecret(s.ID).remove();
    for (const n of await manager.listNetworks(mine)) await manager.getNetwork(n.Id).remove();
    // Each node's own engine, where its containers can be inspected (the manager only knows tasks).
    engines = Object.fromEntries((await manager.listNodes()).map((n) => [n.ID, engineAt(n.Status?.Addr as string)]));
  });

  afterAll(async () => {
    for (const t of [a, b]) await applier?.remove(planTenant(t, settings)).catch(() => undefined);
  });

  it('runs on the tenant node with the hardening of a single engine, its password as a Docker secret', async () => {
    const nodeA = byHost['berth-swarm-2'].id;
    const nodeB = byHost['berth-swarm-3'].id;
    const first = await applier.apply(planTenant(a, settings), { nodeId: nodeA }, { aliases });
    expect(first.changes).toEqual([
      `overlay network berth-swarmtest_berth_${a.slug} created`,
      expect.stringMatching(/^secret berth-swarmtest_db_\w+_mariadb_root_password_\w+ created$/),
      expect.stringMatching(/^secret berth-swarmtest_db_\w+_mysql_root_password_\w+ created$/),
      `service berth-swarmtest_db_${a.slug} created`,
    ]);
    await applier.apply(planTenant(b, settings), { nodeId: nodeB }, { aliases });
    // Applying again changes nothing (a plan made without the plaintext names the same secrets).
    expect(
      (await applier.apply(planTenant({ ...a, dbRootPassword: undefined }, settings), { nodeId: nodeA }, { aliases })).changes,
    ).toEqual([]);

    const task = await running(`berth-swarmtest_db_${a.slug}`);
    expect(task.node).toBe(nodeA);
    const container = engines[nodeA].getContainer(task.container);
    const info = await container.inspect();
    expect(info.HostConfig).toMatchObject({
      ReadonlyRootfs: true,
      Init: true,
      CapDrop: ['ALL'],
      PidsLimit: 256,
      Memory: 256 * 1024 * 1024,
    });
    expect(info.HostConfig.CapAdd).toEqual(expect.arrayContaining(['KILL', 'SETUID']));
    expect(info.Config.Env.join('\n')).not.toContain('root-a-0123456789');
    expect(info.Config.Env).toContainEqual(expect.stringMatching(/^MARIADB_ROOT_PASSWORD_FILE=\/run\/secrets\//));
    const sh = async (cmd: string) => {
      const ex = await container.exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, Tty: true });
      const stream = await ex.start({ Tty: true });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      await new Promise((r) => stream.on('end', r));
      return Buffer.concat(chunks).toString('utf8');
    };
    expect(await sh('cat /run/secrets/*mariadb_root_password*')).toContain('root-a-0123456789');
    // no-new-privileges comes from the nodes' daemon.json (a service cannot ask for it).
    expect(await sh('grep NoNewPrivs /proc/1/status')).toMatch(/NoNewPrivs:\s+1/);
    expect(await sh('touch /probe 2>&1 || echo read-only')).toMatch(/read-only/i);
    expect((await sh('stat -c %a /tmp')).trim()).toBe('1777');
  }, 180_000);

  it("no tenant reaches another tenant's database server, on another node or on the same one", async () => {
    const nodeA = byHost['berth-swarm-2'].id;
    const netA = `berth-swarmtest_berth_${a.slug}`;
    const netB = `berth-swarmtest_berth_${b.slug}`;
    const dbA = await running(`berth-swarmtest_db_${a.slug}`);
    const [addr] =
      (await manager.getTask(dbA.id).inspect()).NetworksAttachments?.find(
        (n: { Network: { Spec: { Name: string } } }) => n.Network.Spec.Name === netA,
      )?.Addresses ?? [];
    const ipA = String(addr).split('/')[0];
    expect(ipA).toMatch(/^10\.96\./);
    // Positive controls: on its own network a task finds its database server as `mysql`,
    // by its service name and by its address, from another node too.
    await eventually(
      async () => ((await probe(netA, byHost['berth-swarm-1'].id, reachesDb('mysql'))) ? true : undefined),
      'A reaches its database',
      90_000,
      1000,
    );
    expect(await probe(netA, nodeA, reachesDb(ipA))).toBe(true);
    expect(await probe(netB, byHost['berth-swarm-1'].id, reachesDb('mysql'))).toBe(true);
    // Tenant B, even on A's node: neither A's name nor A's address answers.
    expect(await probe(netB, nodeA, reachesDb(ipA))).toBe(false);
    expect(await probe(netB, nodeA, reachesDb(`berth-swarmtest_db_${a.slug}`))).toBe(false);
    expect(await probe(netB, byHost['berth-swarm-3'].id, reachesDb(ipA))).toBe(false);
  }, 300_000);

  it('a new password is a new secret: the service is updated to it and the old secret removed', async () => {
    const nodeA = byHost['berth-swarm-2'].id;
    const before = await running(`berth-swarmtest_db_${a.slug}`);
    const rotated = await applier.apply(
      planTenant({ ...a, dbRootPassword: 'root-a-rotated-99', dbRootPasswordSealed: 'sealed-rotated' }, settings),
      { nodeId: nodeA },
      { aliases },
    );
    expect(rotated.changes).toEqual([
      expect.stringMatching(/secret .*mariadb_root_password.* created/),
      expect.stringMatching(/secret .*mysql_root_password.* created/),
      `service berth-swarmtest_db_${a.slug} updated (spec changed)`,
      expect.stringMatching(/secret .* removed/),
      expect.stringMatching(/secret .* removed/),
    ]);
    const after = await running(`berth-swarmtest_db_${a.slug}`, before.id);
    expect(after.node).toBe(nodeA);
    const secrets = await manager.listSecrets({ filters: { label: [`berth.service=berth-swarmtest_db_${a.slug}`] } });
    expect(secrets).toHaveLength(2);
  }, 180_000);

  it("removing a tenant's objects removes its service, its secrets and its overlay network", async () => {
    const service = `berth-swarmtest_db_${b.slug}`;
    const network = `berth-swarmtest_berth_${b.slug}`;
    const label = { filters: { label: [`berth.service=${service}`] } };
    // Positive control: they are there to be removed.
    expect(await manager.getService(service).inspect()).toBeTruthy();
    expect(await manager.listSecrets(label)).toHaveLength(2);
    expect((await manager.listNetworks({ filters: { name: [network] } })).map((n) => n.Name)).toContain(network);
    expect(await applier.remove(planTenant(b, settings))).toEqual([
      `service ${service} removed`,
      expect.stringMatching(/secret .* removed/),
      expect.stringMatching(/secret .* removed/),
      `overlay network ${network} removed`,
    ]);
    await expect(manager.getService(service).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await manager.listSecrets(label)).toHaveLength(0);
    expect((await manager.listNetworks({ filters: { name: [network] } })).map((n) => n.Name)).not.toContain(network);
    // Removing again finds nothing to do.
    expect(await applier.remove(planTenant(b, settings))).toEqual([]);
  }, 120_000);
});

/** Sites provisioned by Berth's jobs on the cluster, served through the edge. */
describe('sites on the Swarm, through the edge', () => {
  const tenants: { id: string; slug: string; key: string; node: string; site?: { id: string; name: string } }[] = [];
  const receiver = new TestWebhookReceiver();
  afterAll(() => receiver.stop().catch(() => undefined));
  const wp = (slug: string, site: string) => names.wpContainer(TEST_INSTANCE, slug, site);
  const db = (slug: string) => names.dbContainer(TEST_INSTANCE, slug);
  const nodeEngine = async (nodeId: string) => engineAt((await manager.getNode(nodeId).inspect()).Status.Addr);
  /** Runs `cmd` as root in the service's running task, through its node's own engine; its stdout. */
  const sh = async (service: string, cmd: string) => {
    const t = await running(service);
    const engine = serviceAt((await manager.getNode(t.node).inspect()).Status.Addr);
    const res = await engine.exec(t.container, ['sh', '-c', cmd], { user: '0' });
    if (res.exitCode !== 0) throw new Error(`${cmd} in ${service}: exit ${res.exitCode}: ${res.stderr}`);
    return res.stdout.trim();
  };
  /** Runs SQL in the site's database, as root, in the tenant's database server task. */
  const sql = async (slug: string, siteId: string, query: string) => {
    const { rows } = await h.db.query<{ dbName: string }>('SELECT "dbName" FROM "Site" WHERE id = $1', [siteId]);
    return sh(
      db(slug),
      `c=$(command -v mariadb || command -v mysql); "$c" -uroot -p"$(cat "$MARIADB_ROOT_PASSWORD_FILE")" -N -B ${rows[0].dbName} -e "${query}"`,
    );
  };
  /** The marker row and file a test wrote into a site: what its database and its volume hold. */
  const markers = async (t: (typeof tenants)[number]) => ({
    row: await sql(t.slug, t.site?.id as string, 'SELECT v FROM berth_marker'),
    file: await sh(wp(t.slug, 'blog'), 'cat /var/www/html/marker.txt'),
  });
  const scopeOf = (slug: string) => ({ filters: { label: [`berth.tenant=${slug}`, `berth.instance=${TEST_INSTANCE}`] } });
  /** GET / through the edge, as a customer's browser would (HTTP: this suite runs the edge without TLS). */
  const viaEdge = (hostname: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      // node:http, not fetch: fetch does not send a Host header of its own choosing.
      const req = httpGet({ host: edgeAddress, port: 80, path: '/', headers: { host: hostname }, timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('timeout', () => req.destroy(new Error('no answer from the edge within 5 s')));
      req.on('error', reject);
    });

  beforeAll(async () => {
    // Room for two tenants on nodes 2 and 3, for one on node 1 (the manager, where the edge
    // runs): the two tenants go to the workers, either of which can then be killed.
    for (const n of await nodes()) {
      await setLabel(n.id, 'berth.memory-mb', String(n.reserved.memoryMb + (n.hostname === 'berth-swarm-1' ? 800 : 4000)));
      await setLabel(n.id, 'berth.cpus', String(n.reserved.cpus + 4));
    }
  }, 60_000);

  it('a site on each of two tenants (on two nodes) runs as a service on its tenant node and serves its installed WordPress through the edge', async () => {
    for (let i = 0; i < 2; i++) {
      const t = await newTenant(uniqueSlug(`ss${i}`));
      expect(t.status).toBe(201);
      const key = (await h.http.post(`/v1/tenants/${t.body.id}/api-keys`).set(auth(h.admin)).send({})).body.key as string;
      tenants.push({ id: t.body.id, slug: t.body.slug, key, node: await nodeOf(t.body.id) });
    }
    expect(tenants[0].node).not.toBe(tenants[1].node);
    const created = await Promise.all(
      tenants.map((t) =>
        h.http
          .post('/v1/sites')
          .set(auth(t.key))
          .send({ name: 'blog', wordpress: { title: `Blog of ${t.slug}` } }),
      ),
    );
    for (const [i, res] of created.entries()) {
      expect(res.status).toBe(202);
      const job = await waitForJob(h, tenants[i].key, res.body.job.id, 240_000);
      expect([job.status, job.error]).toEqual(['SUCCEEDED', null]);
      expect(job.steps.map((s) => s.name)).toEqual(
        expect.arrayContaining(['database server', 'install WordPress', 'route through the edge']),
      );
      tenants[i].site = { id: res.body.site.id, name: 'blog' };
    }
    for (const t of tenants) {
      const site = (await h.http.get(`/v1/sites/${t.site?.id}`).set(auth(t.key))).body;
      const hostname = `blog-${t.slug}.${BASE_DOMAIN}`;
      expect(site).toMatchObject({ status: 'RUNNING', url: null, publicUrl: `http://${hostname}/` });
      // Its database server and WordPress are services whose one task runs on the tenant's node.
      for (const service of [db(t.slug), wp(t.slug, 'blog')]) expect((await running(service)).node).toBe(t.node);
      const spec = (await manager.getService(wp(t.slug, 'blog')).inspect()).Spec;
      const networks = await Promise.all(
        (spec.TaskTemplate.Networks as { Target: string }[]).map(async (n) => (await manager.getNetwork(n.Target).inspect()).Name),
      );
      expect(networks.sort()).toEqual(['berth-edge', names.network(TEST_INSTANCE, t.slug)].sort());
      // No port is published: the edge is the only way in.
      expect(spec.EndpointSpec?.Ports ?? []).toEqual([]);
      // The installed site (the stand-in image shows its install) through the edge.
      const page = await viaEdge(hostname);
      expect(page.status).toBe(200);
      expect(page.body).toContain(`installed: title=Blog of ${t.slug} admin=`);
    }
    // Its log, through the manager, whichever node its task runs on.
    const logs = await h.http.get(`/v1/sites/${tenants[1].site?.id}/logs?tail=500`).set(auth(tenants[1].key));
    expect(logs.status).toBe(200);
    expect(logs.text).toContain('stub wordpress listening');
    // Positive control for the page check: a hostname the edge does not route is not served.
    expect((await viaEdge(`nope-${tenants[0].slug}.example`)).body).not.toContain('installed:');
  }, 420_000);

  it("each node has its own engine slots: with one node's all taken, its tenant's site job waits while another node's runs", async () => {
    const [a, b] = tenants;
    const redis = testRedis();
    // Every slot of A's node, held as busy jobs would hold them.
    const held = Array.from({ length: SLOTS }, (_, i) => `berth:slot:engine:${TEST_INSTANCE}:node:${a.node}:${i}`);
    const made: { t: (typeof tenants)[number]; site: string; job: string }[] = [];
    try {
      for (const k of held) expect(await redis.set(k, 'held by the test', 'PX', 120_000, 'NX')).toBe('OK');
      for (const t of [a, b]) {
        const res = await h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'slots' });
        expect(res.status).toBe(202);
        made.push({ t, site: res.body.site.id, job: res.body.job.id });
      }
      const [ofA, ofB] = made;
      // B's node has free slots: its job runs to the end without waiting for one...
      const jobB = await waitForJob(h, b.key, ofB.job, 240_000);
      expect([jobB.status, jobB.error]).toEqual(['SUCCEEDED', null]);
      expect(jobB.steps.map((s) => s.name)).not.toContain('wait for an engine slot');
      // ...while A's waits for one of its own node's, having made nothing there.
      const waiting = await eventually(
        async () => {
          const j = (await h.http.get(`/v1/jobs/${ofA.job}`).set(auth(a.key))).body as {
            status: string;
            steps: { name: string; status: string }[];
          };
          return j.status === 'RUNNING' && j.steps.length ? j : undefined;
        },
        "A's job to start",
        30_000,
        200,
      );
      expect(waiting.steps.map((s) => [s.name, s.status])).toEqual([['wait for an engine slot', 'running']]);
      expect(
        await manager
          .getService(wp(a.slug, 'slots'))
          .inspect()
          .catch((e: { statusCode?: number }) => e.statusCode),
      ).toBe(404);
    } finally {
      await redis.del(...held);
      redis.disconnect();
    }
    // Its node's slots free, A's job takes one and runs.
    const jobA = await waitForJob(h, a.key, made[0].job, 240_000);
    expect([jobA.status, jobA.error]).toEqual(['SUCCEEDED', null]);
    expect((await running(wp(a.slug, 'slots'))).node).toBe(a.node);
    // Gone again: the tests below count each tenant's sites and volumes.
    for (const m of made) {
      const del = await h.http.delete(`/v1/sites/${m.site}`).set(auth(m.t.key));
      expect((await waitForJob(h, m.t.key, del.body.job.id, 180_000)).status).toBe('SUCCEEDED');
    }
  }, 600_000);

  it('a WordPress service removed by hand is found missing by the reconciler and made again by a repair, with its content', async () => {
    const [, b] = tenants;
    const service = wp(b.slug, 'blog');
    const before = await running(service);
    await manager.getService(service).remove();
    const repair = await eventually(
      async () => {
        const { rows } = await h.db.query<{ id: string; status: string; error: string | null }>(
          `SELECT id, status, error FROM "Job" WHERE "siteId" = $1 AND kind = 'REPAIR' ORDER BY "createdAt" DESC LIMIT 1`,
          [b.site?.id],
        );
        return rows[0] && !['QUEUED', 'RUNNING'].includes(rows[0].status) ? rows[0] : undefined;
      },
      'a finished repair',
      180_000,
      500,
    );
    expect([repair.status, repair.error]).toEqual(['SUCCEEDED', null]);
    const after = await running(service);
    expect(after.node).toBe(b.node);
    expect(after.id).not.toBe(before.id);
    // The same volume on the same node: the install is still there.
    const page = await viaEdge(`blog-${b.slug}.${BASE_DOMAIN}`);
    expect([page.status, page.body.includes(`installed: title=Blog of ${b.slug}`)]).toEqual([200, true]);
    // Two restarts in a row: each waits for a task of the service's current spec (a forced
    // update), not for times Swarm moves on every write.
    for (let i = 0; i < 2; i++) {
      const before = await running(service);
      const r = await h.http.post(`/v1/sites/${b.site?.id}/restart`).set(auth(b.key));
      expect(r.status).toBe(202);
      const job = await waitForJob(h, b.key, r.body.job.id, 180_000);
      expect([job.status, job.error]).toEqual(['SUCCEEDED', null]);
      expect((await running(service, before.id)).id).not.toBe(before.id);
    }
    // A settled site is left alone: no other repair is enqueued over two more full passes
    // (the one above shows a pass can enqueue one).
    const repairs = async () => (await h.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "Job" WHERE kind = 'REPAIR'`)).rows[0].n;
    const before2 = await repairs();
    const start = await passes();
    await eventually(async () => ((await passes()) >= start + 2 ? true : undefined), 'two more reconciler passes', 60_000, 500);
    expect(await repairs()).toBe(before2);
  }, 240_000);

  it("the edge network reaches WordPress services but never a tenant's database server", async () => {
    const [a] = tenants;
    const dbA = await running(db(a.slug));
    const [addr] =
      (await manager.getTask(dbA.id).inspect()).NetworksAttachments?.find(
        (n: { Network: { Spec: { Name: string } } }) => n.Network.Spec.Name === names.network(TEST_INSTANCE, a.slug),
      )?.Addresses ?? [];
    const ipA = String(addr).split('/')[0];
    // A task on the edge network (where the edge and every WordPress are), on A's node and on another.
    const other = Object.values(byHost).find((n) => n.id !== a.node)?.id as string;
    // Positive control: from there, A's WordPress answers by its service name.
    expect(
      await probe(
        'berth-edge',
        other,
        `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 4 ${wp(a.slug, 'blog')} 80 | grep -q '^HTTP/1.[01] 200'`,
      ),
    ).toBe(true);
    expect(await probe('berth-edge', a.node, reachesDb(ipA))).toBe(false);
    expect(await probe('berth-edge', a.node, reachesDb(db(a.slug)))).toBe(false);
    expect(await probe('berth-edge', other, reachesDb(ipA))).toBe(false);
    // ... while on A's own network the same check reaches it (the probe could see it).
    expect(await probe(names.network(TEST_INSTANCE, a.slug), other, reachesDb('mysql'))).toBe(true);
  }, 300_000);

  it("a site's backup on the cluster is read on its node, and a restore puts its database and files back there; a stopped site's too", async () => {
    const [a] = tenants;
    const site = a.site?.id as string;
    await sql(a.slug, site, "CREATE TABLE berth_marker (v VARCHAR(20)); INSERT INTO berth_marker VALUES ('before')");
    await sh(wp(a.slug, 'blog'), 'echo before > /var/www/html/marker.txt');
    const taken = await h.http.post(`/v1/sites/${site}/backups`).set(auth(a.key));
    expect(taken.status).toBe(202);
    const job = await waitForJob(h, a.key, taken.body.job.id, 180_000);
    expect([job.status, job.error]).toEqual(['SUCCEEDED', null]);
    const backup = (await h.http.get(`/v1/backups/${taken.body.backup.id}`).set(auth(a.key))).body;
    expect(backup).toMatchObject({ status: 'SUCCEEDED', tables: 1, image: expect.stringMatching(/^berth\/stub-wordpress:latest/) });

    // Changed since: the restore must give back what the backup holds.
    await sql(a.slug, site, "UPDATE berth_marker SET v = 'after'");
    await sh(wp(a.slug, 'blog'), 'echo after > /var/www/html/marker.txt');
    expect(await markers(a)).toEqual({ row: 'after', file: 'after' });
    const restored = await h.http.post(`/v1/sites/${site}/restore`).set(auth(a.key)).send({ backupId: backup.id });
    expect(restored.status).toBe(202);
    const restore = await waitForJob(h, a.key, restored.body.job.id, 300_000);
    expect([restore.status, restore.error]).toEqual(['SUCCEEDED', null]);
    expect(restore.steps.map((s) => s.name)).toEqual(
      expect.arrayContaining(['checkpoint of the current state', 'restore database and files from backup', 'check the restored site']),
    );
    expect(restore.steps.find((s) => s.name === 'check the restored site')?.detail).toBe('home page answers HTTP 200');
    expect(await markers(a)).toEqual({ row: 'before', file: 'before' });
    expect((await running(wp(a.slug, 'blog'))).node).toBe(a.node);
    const page = await viaEdge(`blog-${a.slug}.${BASE_DOMAIN}`);
    expect([page.status, page.body.includes(`installed: title=Blog of ${a.slug}`)]).toEqual([200, true]);

    // A stopped site's service has no task: its files are read from its volume by a helper on its node.
    const act = async (verb: 'stop' | 'start') => {
      const r = await h.http.post(`/v1/sites/${site}/${verb}`).set(auth(a.key));
      expect(r.status).toBe(202);
      const j = await waitForJob(h, a.key, r.body.job.id, 180_000);
      expect([j.status, j.error]).toEqual(['SUCCEEDED', null]);
    };
    await act('stop');
    expect((await manager.listTasks({ filters: { service: [wp(a.slug, 'blog')], 'desired-state': ['running'] } })).length).toBe(0);
    const stopped = await h.http.post(`/v1/sites/${site}/backups`).set(auth(a.key));
    const stoppedJob = await waitForJob(h, a.key, stopped.body.job.id, 180_000);
    expect([stoppedJob.status, stoppedJob.error]).toEqual(['SUCCEEDED', null]);
    const fromStopped = (await h.http.get(`/v1/backups/${stopped.body.backup.id}`).set(auth(a.key))).body;
    expect(fromStopped).toMatchObject({ status: 'SUCCEEDED', tables: 1 });
    // It holds the files: the same number of bytes as the running site's backup.
    expect(fromStopped.sizeBytes).toBe(backup.sizeBytes);
    await act('start');
    expect(await markers(a)).toEqual({ row: 'before', file: 'before' });
  }, 600_000);

  it('a node that dies turns its sites DOWN within 30 s and their owners are told, others stay UP; back, its sites are UP with no manual step', async () => {
    const [a, b] = tenants;
    const hookUrl = await receiver.start();
    expect(
      (
        await h.http
          .post('/v1/webhooks')
          .set(auth(a.key))
          .send({ url: hookUrl, events: ['site.down', 'site.up'] })
      ).status,
    ).toBe(201);
    const health = async (t: (typeof tenants)[number]) =>
      (await h.http.get(`/v1/sites/${t.site?.id}`).set(auth(t.key))).body.health as string;
    await eventually(
      async () => ((await health(a)) === 'UP' && (await health(b)) === 'UP' ? true : undefined),
      'both sites UP',
      60_000,
      500,
    );
    const k = Object.values(byHost)
      .find((n) => n.id === a.node)
      ?.hostname.replace('berth-swarm-', '') as string;
    expect(k).not.toBe('1');
    await swarm('kill', k);
    const killed = Date.now();
    await eventually(async () => ((await health(a)) === 'DOWN' ? true : undefined), "A's site DOWN", 30_000, 500);
    const downAfter = Date.now() - killed;
    const down = await eventually(
      async () =>
        (
          (await h.http.get(`/v1/events?type=site.down&siteId=${a.site?.id}&limit=5`).set(auth(a.key))).body as {
            id: string;
            message: string;
          }[]
        )[0],
      'the site.down event',
      10_000,
      300,
    );
    expect(down.message).toMatch(/its node berth-swarm-\d is down/);
    const hook = await eventually(
      () => receiver.hooks.find((r) => JSON.parse(r.body).id === down.id),
      'the site.down webhook',
      30_000,
      200,
    );
    expect(hook.headers['berth-event']).toBe('site.down');
    // A node that is down cannot be evacuated: its tenants' data is read there.
    const refused = await h.http.post(`/v1/nodes/${a.node}/evacuate`).set(auth(h.admin));
    expect([refused.status, refused.body.code]).toEqual([409, 'NODE_NOT_READY']);
    // The other tenant's site, on another node, stayed UP (A's going DOWN shows it could be seen).
    expect(await health(b)).toBe('UP');
    expect((await h.http.get(`/v1/events?type=site.down&siteId=${b.site?.id}&limit=5`).set(auth(b.key))).body).toEqual([]);
    // While the node is down the reconciler leaves A's site alone, but the site still claims
    // its service: orphan collection, which does run (it removes a made-up tenant's secret
    // meanwhile), does not take it.
    const ghost = (await manager.createSecret({
      Name: `ghost-${randomBytes(3).toString('hex')}`,
      Labels: { [LABEL.managedBy]: MANAGED_BY, [LABEL.instance]: TEST_INSTANCE, [LABEL.tenant]: 'ghost-of-a-down-node' },
      Data: Buffer.from('x').toString('base64'),
    })) as { id: string };
    const orphans = async () =>
      (
        await h.db.query<{ object: string; labels: Record<string, string> }>(
          `SELECT data->>'object' AS object, data->'labels' AS labels FROM "Event" WHERE type = 'orphan.removed' AND "createdAt" >= to_timestamp($1 / 1000.0) AT TIME ZONE 'UTC'`,
          [killed],
        )
      ).rows;
    await eventually(
      async () => ((await orphans()).some((o) => o.object === `secret:${ghost.id}`) ? true : undefined),
      'the ghost secret to be collected',
      60_000,
      500,
    );
    expect((await orphans()).filter((o) => o.labels[LABEL.tenant] === a.slug)).toEqual([]);
    expect((await manager.getService(wp(a.slug, 'blog')).inspect()).Spec.Name).toBe(wp(a.slug, 'blog'));
    expect(await health(a)).toBe('DOWN');

    await swarm('start', k);
    const started = Date.now();
    await eventually(async () => ((await health(a)) === 'UP' ? true : undefined), "A's site UP again", 180_000, 1000);
    const page = await viaEdge(`blog-${a.slug}.${BASE_DOMAIN}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(`installed: title=Blog of ${a.slug}`);
    expect((await running(db(a.slug))).node).toBe(a.node);
    console.log(
      `node ${k} killed: its site DOWN after ${downAfter} ms (${down.message}); started again: UP after ${Date.now() - started} ms`,
    );
  }, 300_000);

  it('evacuating a node moves its tenant to another node through backup and restore: the same content and domain, nothing left behind', async () => {
    const [a, b] = tenants;
    const from = a.node;
    const site = a.site?.id as string;
    // A second site, stopped: on the new node no task of it ever runs, so its volume is made
    // (labelled as the site's) by the restore's helper, which also needs the site's image there.
    const made = await h.http.post('/v1/sites').set(auth(a.key)).send({ name: 'notes' });
    expect(made.status).toBe(202);
    const notes = made.body.site.id as string;
    // A primary domain of its own, served through the edge before the move.
    const domain = `shop-${a.slug}.example`;
    const added = await h.http.post(`/v1/sites/${site}/domains`).set(auth(a.key)).send({ hostname: domain, primary: true });
    expect(added.status).toBe(201);
    const provisioned = await waitForJob(h, a.key, made.body.job.id, 240_000);
    expect([provisioned.status, provisioned.error]).toEqual(['SUCCEEDED', null]);
    await sh(wp(a.slug, 'notes'), 'echo kept > /var/www/html/marker.txt');
    const stop = await h.http.post(`/v1/sites/${notes}/stop`).set(auth(a.key));
    expect((await waitForJob(h, a.key, stop.body.job.id, 180_000)).status).toBe('SUCCEEDED');
    await eventually(
      async () => {
        const page = await viaEdge(domain).catch(() => undefined);
        return page?.status === 200 && page.body.includes(`installed: title=Blog of ${a.slug}`) ? true : undefined;
      },
      'the site at its own domain',
      180_000,
      1000,
    );
    const fromEngine = await nodeEngine(from);
    // Positive control: the tenant's containers and volumes are on the node, to be moved.
    expect((await fromEngine.listContainers({ all: true, ...scopeOf(a.slug) })).length).toBeGreaterThan(0);
    expect(((await fromEngine.listVolumes(scopeOf(a.slug))).Volumes ?? []).length).toBe(3);

    const res = await h.http.post(`/v1/nodes/${from}/evacuate`).set(auth(h.admin));
    expect(res.status).toBe(202);
    expect(res.body.node).toMatchObject({ id: from, cordoned: true, schedulable: false });
    // A's, and those of the tenants without sites an earlier test placed there.
    const jobs = res.body.jobs as { id: string; kind: string; tenantId: string; siteId: string | null }[];
    expect(new Set(jobs.map((j) => [j.kind, j.siteId].join()))).toEqual(new Set(['MOVE_TENANT,']));
    const moveOfA = jobs.find((j) => j.tenantId === a.id) as (typeof jobs)[number];
    expect(moveOfA).toBeDefined();
    // A site job asked for meanwhile waits for the move, and then runs.
    const restart = await h.http.post(`/v1/sites/${site}/restart`).set(auth(a.key));
    expect(restart.status).toBe(202);
    // A deletion asked for meanwhile (it too waits for the move), then cancelled: the move
    // carries a site whatever its deletion, so the undone site has lost nothing (below).
    const deletion = await h.http.delete(`/v1/sites/${notes}`).set(auth(a.key));
    expect(deletion.status).toBe(202);
    const cancelled = await h.http.post(`/v1/jobs/${deletion.body.job.id}/cancel`).set(auth(a.key));
    expect([cancelled.status, cancelled.body.status]).toEqual([202, 'CANCELLED']);
    const move = await waitForJob(h, h.admin, moveOfA.id, 600_000);
    expect([move.status, move.error]).toEqual(['SUCCEEDED', null]);
    for (const j of jobs) expect((await waitForJob(h, h.admin, j.id, 120_000)).status).toBe('SUCCEEDED');
    expect(move.steps.map((s) => s.name)).toEqual(
      expect.arrayContaining(['choose a node', 'stop blog', 'checkpoint of blog', 'put blog back', 'check the restored site']),
    );
    const to = await nodeOf(a.id);
    expect(to).not.toBe(from);
    for (const service of [db(a.slug), wp(a.slug, 'blog')]) expect((await running(service)).node).toBe(to);
    // The same content, at the same domain and platform hostname.
    expect(await markers(a)).toEqual({ row: 'before', file: 'before' });
    for (const hostname of [domain, `blog-${a.slug}.${BASE_DOMAIN}`]) {
      const page = await eventually(
        async () => {
          const p = await viaEdge(hostname).catch(() => undefined);
          return p && p.status < 500 ? p : undefined;
        },
        `${hostname} through the edge`,
        60_000,
        1000,
      );
      // The platform hostname redirects to the primary domain.
      expect(page.status).toBe(hostname === domain ? 200 : 301);
      if (hostname === domain) expect(page.body).toContain(`installed: title=Blog of ${a.slug}`);
    }
    const after = (await h.http.get(`/v1/sites/${site}`).set(auth(a.key))).body;
    expect(after).toMatchObject({ status: 'RUNNING', publicUrl: `http://${domain}/` });
    // Nothing of the tenant is left on the evacuated node.
    expect(await fromEngine.listContainers({ all: true, ...scopeOf(a.slug) })).toEqual([]);
    expect((await fromEngine.listVolumes(scopeOf(a.slug))).Volumes ?? []).toEqual([]);
    const node = (await nodes()).find((n) => n.id === from) as NodeBody;
    expect([node.cordoned, node.tenants]).toEqual([true, []]);
    // The restart waited for the move, then ran on the new node.
    const restarted = await waitForJob(h, a.key, restart.body.job.id, 180_000);
    expect([restarted.status, restarted.error]).toEqual(['SUCCEEDED', null]);
    expect(new Date(restarted.startedAt as string).getTime()).toBeGreaterThanOrEqual(new Date(move.finishedAt as string).getTime());
    // The stopped site is stopped there, its volume labelled as the site's (so the tenant's
    // removal finds it), and started, it has its files.
    expect((await h.http.get(`/v1/sites/${notes}`).set(auth(a.key))).body.status).toBe('STOPPED');
    const notesVolumes = (await (await nodeEngine(to)).listVolumes({ filters: { label: [`berth.site-id=${notes}`] } })).Volumes ?? [];
    expect(notesVolumes.map((v) => v.Labels?.['berth.tenant'])).toEqual([a.slug]);
    const start = await h.http.post(`/v1/sites/${notes}/start`).set(auth(a.key));
    const started = await waitForJob(h, a.key, start.body.job.id, 180_000);
    expect([started.status, started.error]).toEqual(['SUCCEEDED', null]);
    expect((await running(wp(a.slug, 'notes'))).node).toBe(to);
    expect(await sh(wp(a.slug, 'notes'), 'cat /var/www/html/marker.txt')).toBe('kept');
    // The other tenant was not touched.
    expect((await running(db(b.slug))).node).toBe(b.node);
    a.node = to;
    expect((await h.http.post(`/v1/nodes/${from}/uncordon`).set(auth(h.admin))).status).toBe(200);
  }, 900_000);

  it("what a failed move left on the node it left is removed by a worker's sweep; the tenant's own objects and another tenant's stay", async () => {
    const [a, b] = tenants;
    // The move of A above as if its last step (clearing the old node) had failed: it ends
    // FAILED, committed, not cleared; and a volume of A's is left on that node.
    const { rows } = await h.db.query<{ id: string; params: { fromNodeId: string } }>(
      `SELECT id, params FROM "Job" WHERE "tenantId" = $1 AND kind = 'MOVE_TENANT' ORDER BY "createdAt" DESC LIMIT 1`,
      [a.id],
    );
    const [move] = rows;
    const left = move.params.fromNodeId;
    expect(left).not.toBe(a.node);
    const leftEngine = await nodeEngine(left);
    const labels = (tenant: string) => ({
      'berth.managed-by': 'berth',
      'berth.instance': TEST_INSTANCE,
      'berth.tenant': tenant,
      'berth.role': 'volume',
    });
    const leftover = `leftover_${a.slug}`;
    const othersVolume = `kept_${b.slug}`;
    await leftEngine.createVolume({ Name: leftover, Labels: labels(a.slug) });
    // Another tenant's site volume (claimed by its live site wherever it is, so the reconciler keeps it).
    await leftEngine.createVolume({ Name: othersVolume, Labels: { ...labels(b.slug), 'berth.site-id': b.site?.id as string } });
    const home = await nodeEngine(a.node);
    const homeVolumes = ((await home.listVolumes(scopeOf(a.slug))).Volumes ?? []).map((v) => v.Name).sort();
    expect(homeVolumes.length).toBeGreaterThan(0);
    try {
      // The positive control: the leftover is there before the move's row says anything is left.
      const volumeNames = async () => ((await leftEngine.listVolumes(scopeOf(a.slug))).Volumes ?? []).map((v) => v.Name);
      expect(await volumeNames()).toEqual([leftover]);
      // Claimed by its tenant, the reconciler (every 2 s here) never collects it: only the sweep.
      await h.db.query(`UPDATE "Job" SET status = 'FAILED', params = params - 'cleared' WHERE id = $1`, [move.id]);
      await eventually(async () => ((await volumeNames()).length === 0 ? true : undefined), 'the leftover volume to go', 60_000);
      const events = (await h.http.get('/v1/events?type=tenant.move.cleared&limit=10').set(auth(h.admin))).body as {
        tenantId: string;
        message: string;
        data: { jobId: string; nodeId: string };
      }[];
      const event = events.find((e) => e.tenantId === a.id);
      expect(event?.data).toMatchObject({ jobId: move.id, nodeId: left });
      expect(event?.message).toContain(`volume ${leftover} removed`);
      const after = await h.db.query<{ params: { leftoversCleared?: boolean } }>('SELECT params FROM "Job" WHERE id = $1', [move.id]);
      expect(after.rows[0].params.leftoversCleared).toBe(true);
      // A's objects on its node, and another tenant's volume on the node it left, stay.
      expect(((await home.listVolumes(scopeOf(a.slug))).Volumes ?? []).map((v) => v.Name).sort()).toEqual(homeVolumes);
      expect((await leftEngine.listVolumes(scopeOf(b.slug))).Volumes?.map((v) => v.Name)).toContain(othersVolume);
      expect((await h.http.get(`/v1/sites/${a.site?.id}`).set(auth(a.key))).body.status).toBe('RUNNING');
    } finally {
      await leftEngine
        .getVolume(othersVolume)
        .remove()
        .catch(() => undefined);
      await leftEngine
        .getVolume(leftover)
        .remove()
        .catch(() => undefined);
    }
  }, 120_000);

  it("a node that is down is evacuated from its tenants' latest backups (asked for outright); back, what is left on it is kept", async () => {
    const [, b] = tenants;
    const site = b.site?.id as string;
    const old = await nodeOf(b.id);
    b.node = old;
    const k = Object.values(byHost)
      .find((n) => n.id === old)
      ?.hostname.replace('berth-swarm-', '') as string;
    expect(k).not.toBe('1');
    // What the backup holds, then a change after it (lost with the node).
    await sh(wp(b.slug, 'blog'), 'echo in-the-backup > /var/www/html/evacuated.txt');
    const taken = await h.http.post(`/v1/sites/${site}/backups`).set(auth(b.key));
    expect(taken.status).toBe(202);
    expect((await waitForJob(h, b.key, taken.body.job.id, 180_000)).status).toBe('SUCCEEDED');
    await sh(wp(b.slug, 'blog'), 'echo after-the-backup > /var/www/html/evacuated.txt');
    const oldEngine = await nodeEngine(old);
    expect(((await oldEngine.listVolumes(scopeOf(b.slug))).Volumes ?? []).length).toBeGreaterThan(0);
    // A ready node is not evacuated from backups (its data is there as it is now).
    const ready = await h.http.post(`/v1/nodes/${old}/evacuate?fromBackups=true`).set(auth(h.admin));
    expect([ready.status, ready.body.code]).toEqual([409, 'NODE_READY']);

    // C: a tenant on the same node with a site never backed up, deleted while the node is down.
    for (const n of await nodes())
      await setLabel(n.id, 'berth.memory-mb', String(n.id === old ? n.reserved.memoryMb + 20000 : Math.max(1, n.reserved.memoryMb)));
    await setLabel(old, 'berth.cpus', String((await nodes()).find((n) => n.id === old)!.reserved.cpus + 8));
    const made = await newTenant(uniqueSlug('gone'));
    expect(made.status).toBe(201);
    const c = { id: made.body.id as string, slug: made.body.slug as string };
    expect(await nodeOf(c.id)).toBe(old);
    const keyC = (await h.http.post(`/v1/tenants/${c.id}/api-keys`).set(auth(h.admin)).send({})).body.key as string;
    const shop = await h.http.post('/v1/sites').set(auth(keyC)).send({ name: 'shop' });
    expect(shop.status).toBe(202);
    expect((await waitForJob(h, keyC, shop.body.job.id, 240_000)).status).toBe('SUCCEEDED');
    const leftOfC = ((await oldEngine.listVolumes(scopeOf(c.slug))).Volumes ?? []).map((v) => v.Name).sort();
    expect(leftOfC).toEqual([names.dbVolume(TEST_INSTANCE, c.slug), names.siteVolume(TEST_INSTANCE, c.slug, 'shop')].sort());

    // Room for B and C on the other nodes, whatever the earlier tests booked there.
    for (const n of await nodes())
      if (n.id !== old) {
        await setLabel(n.id, 'berth.memory-mb', String(n.reserved.memoryMb + 20000));
        await setLabel(n.id, 'berth.cpus', String(n.reserved.cpus + 8));
      }
    await swarm('kill', k);
    let restarted = false;
    try {
      await eventually(
        async () => ((await nodes()).find((n) => n.id === old)?.state === 'down' ? true : undefined),
        'the node down',
        60_000,
        500,
      );
      const bad = await h.http.post(`/v1/nodes/${old}/evacuate?fromBackups=maybe`).set(auth(h.admin));
      expect([bad.status, bad.body.code]).toEqual([400, 'VALIDATION_FAILED']);
      const plain = await h.http.post(`/v1/nodes/${old}/evacuate`).set(auth(h.admin));
      expect([plain.status, plain.body.code]).toEqual([409, 'NODE_NOT_READY']);
      expect(plain.body.detail).toMatch(/fromBackups=true/);
      const res = await h.http.post(`/v1/nodes/${old}/evacuate?fromBackups=true`).set(auth(h.admin));
      expect(res.status).toBe(202);
      const moveOfB = (res.body.jobs as { id: string; tenantId: string }[]).find((j) => j.tenantId === b.id);
      expect(moveOfB).toBeDefined();
      const move = await waitForJob(h, h.admin, moveOfB!.id, 600_000);
      expect([move.status, move.error]).toEqual(['SUCCEEDED', null]);
      const stepNames = move.steps.map((s) => s.name);
      expect(stepNames).toEqual(expect.arrayContaining(['latest backup of blog', 'put blog back', 'check the restored site']));
      // Nothing was read on the dead node: no checkpoint was taken, nothing stopped there.
      expect(stepNames.filter((n) => /^checkpoint of|^stop /.test(n))).toEqual([]);
      expect(move.steps.find((s) => s.name.startsWith('what is left on'))?.detail).toMatch(/^kept: it holds what each site changed since/);
      const to = await nodeOf(b.id);
      expect(to).not.toBe(old);
      expect((await running(wp(b.slug, 'blog'))).node).toBe(to);
      expect(await sh(wp(b.slug, 'blog'), 'cat /var/www/html/evacuated.txt')).toBe('in-the-backup');
      expect((await h.http.get(`/v1/sites/${site}`).set(auth(b.key))).body.status).toBe('RUNNING');
      b.node = to;

      // C's site had no backup: not carried, FAILED. C is deleted while its old node is still
      // down (its site's task ran there): nothing waits for that node.
      const moveOfC = (res.body.jobs as { id: string; tenantId: string }[]).find((j) => j.tenantId === c.id);
      expect((await waitForJob(h, h.admin, moveOfC!.id, 600_000)).steps.map((s) => s.name)).toContain('shop not carried');
      // Each in one attempt, saying what is left for the reconciler (a deletion used to fail
      // on the node's engine, and a later attempt found nothing to say).
      const onDown = expect.stringContaining(`is down: what is there is removed by the reconciler once it is back`);
      const shopGone = await h.http.delete(`/v1/sites/${shop.body.site.id}`).set(auth(keyC));
      expect(shopGone.status).toBe(202);
      const shopDeletion = await waitForJob(h, keyC, shopGone.body.job.id, 240_000);
      expect([shopDeletion.status, shopDeletion.error, shopDeletion.attempts]).toEqual(['SUCCEEDED', null, 1]);
      expect(shopDeletion.steps.map((s) => s.detail)).toContainEqual(onDown);
      const gone = await h.http.delete(`/v1/tenants/${c.id}?force=true`).set(auth(h.admin));
      expect(gone.status).toBe(202);
      const deletion = await waitForJob(h, h.admin, gone.body.job.id, 240_000);
      expect([deletion.status, deletion.error, deletion.attempts]).toEqual(['SUCCEEDED', null, 1]);
      expect(deletion.steps.find((s) => s.name === 'remove network, database server and volume')?.detail).toEqual(onDown);
      // A new tenant takes C's slug (placed elsewhere: the old node is down).
      const again = await newTenant(c.slug);
      expect(again.status).toBe(201);
      expect(await nodeOf(again.body.id)).not.toBe(old);

      // Back: what the tenant left there is newer than its backup, so it is kept (the change made
      // after the backup is still in it), for the operator; the site runs on its new node.
      await swarm('start', k);
      restarted = true;
      await eventually(
        async () => ((await nodes()).find((n) => n.id === old)?.state === 'ready' ? true : undefined),
        'the node back',
        60_000,
        500,
      );
      // What C left there is removed by the reconciler, its slug now another tenant's (which
      // never was on that node); B's, kept, is still there after that.
      await eventually(
        async () => (((await oldEngine.listVolumes(scopeOf(c.slug))).Volumes ?? []).length === 0 ? true : undefined),
        "C's volumes on the node removed",
        60_000,
        500,
      );
      const removed = await h.db.query<{ object: string }>(
        `SELECT data->>'object' AS object FROM "Event" WHERE type = 'orphan.removed' AND data->>'object' = ANY($1)`,
        [leftOfC.map((v) => `volume:${old}:${v}`)],
      );
      expect(removed.rows.map((r) => r.object).sort()).toEqual(leftOfC.map((v) => `volume:${old}:${v}`).sort());
      const kept = ((await oldEngine.listVolumes(scopeOf(b.slug))).Volumes ?? []).map((v) => v.Name);
      expect(kept).toContain(names.siteVolume(TEST_INSTANCE, b.slug, 'blog'));
      expect(kept).toContain(names.dbVolume(TEST_INSTANCE, b.slug));
      expect(await sh(wp(b.slug, 'blog'), 'cat /var/www/html/evacuated.txt')).toBe('in-the-backup');
      expect((await h.db.query('SELECT params FROM "Job" WHERE id = $1', [moveOfB!.id])).rows[0].params.leftoversCleared).toBeUndefined();
    } finally {
      if (!restarted) await swarm('start', k);
      await h.http.post(`/v1/nodes/${old}/uncordon`).set(auth(h.admin));
    }
  }, 900_000);

  it('a new tenant is not placed on a node holding volumes under its slug (what a deleted tenant of that slug left there); once they are gone, it is', async () => {
    const [, b] = tenants;
    const all = await nodes();
    const x = all.find((n) => n.schedulable) as NodeBody;
    // Only x has room: a new tenant goes there or nowhere.
    for (const n of all)
      await setLabel(n.id, 'berth.memory-mb', String(n.id === x.id ? n.reserved.memoryMb + 4000 : Math.max(1, n.reserved.memoryMb)));
    await setLabel(x.id, 'berth.cpus', String(x.reserved.cpus + 4));
    const control = await newTenant();
    expect(control.status).toBe(201);
    expect(await nodeOf(control.body.id)).toBe(x.id);
    const slug = uniqueSlug('left');
    const engine = await nodeEngine(x.id);
    // As a deleted tenant's database volume that the reconciler has not removed yet (labelled
    // with a live site's id here, so that it keeps it for the length of the test).
    const name = names.dbVolume(TEST_INSTANCE, slug);
    await engine.createVolume({
      Name: name,
      Labels: {
        [LABEL.managedBy]: MANAGED_BY,
        [LABEL.instance]: TEST_INSTANCE,
        [LABEL.tenant]: slug,
        [LABEL.siteId]: b.site?.id as string,
      },
    });
    try {
      const refused = await newTenant(slug);
      expect([refused.status, refused.body.code]).toEqual([409, 'NO_CAPACITY']);
      expect(refused.body.detail).toContain(`${x.hostname}: it holds ${name} under slug ${slug}, not this tenant's`);
      expect((await h.db.query('SELECT 1 FROM "Tenant" WHERE slug = $1', [slug])).rowCount).toBe(0);
    } finally {
      await engine.getVolume(name).remove();
    }
    const placed = await newTenant(slug);
    expect(placed.status).toBe(201);
    expect(await nodeOf(placed.body.id)).toBe(x.id);
  }, 120_000);

  it('deleting a site removes its service and its volume on its node; deleting a tenant removes everything of it', async () => {
    const [a, b] = tenants;
    const engineA = await nodeEngine(a.node);
    const siteScope = { filters: { label: [`berth.site-id=${a.site?.id}`] } };
    // Positive control: the volume is there to be removed.
    expect((await engineA.listVolumes(siteScope)).Volumes ?? []).toHaveLength(1);
    const del = await h.http.delete(`/v1/sites/${a.site?.id}`).set(auth(a.key));
    expect(del.status).toBe(202);
    const job = await waitForJob(h, a.key, del.body.job.id, 180_000);
    expect([job.status, job.error]).toEqual(['SUCCEEDED', null]);
    await expect(manager.getService(wp(a.slug, 'blog')).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect((await engineA.listVolumes(siteScope)).Volumes ?? []).toHaveLength(0);
    expect((await manager.getService(db(a.slug)).inspect()).Spec.Name).toBe(db(a.slug));

    const engineB = await nodeEngine(b.node);
    const tenantScope = { filters: { label: [`berth.tenant=${b.slug}`, `berth.instance=${TEST_INSTANCE}`] } };
    expect(((await engineB.listVolumes(tenantScope)).Volumes ?? []).length).toBe(2);
    const gone = await h.http.delete(`/v1/tenants/${b.id}?force=true`).set(auth(h.admin));
    expect(gone.status).toBe(202);
    const deletion = await waitForJob(h, h.admin, gone.body.job.id, 240_000);
    expect([deletion.status, deletion.error]).toEqual(['SUCCEEDED', null]);
    expect(await manager.listServices(tenantScope)).toEqual([]);
    expect((await manager.listNetworks(tenantScope)).map((n) => n.Name)).toEqual([]);
    expect((await engineB.listVolumes(tenantScope)).Volumes ?? []).toEqual([]);
    expect(await manager.listSecrets(tenantScope)).toEqual([]);
  }, 420_000);
});
