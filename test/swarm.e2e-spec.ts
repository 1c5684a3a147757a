/**
 * Berth on a real Docker Swarm: three Docker Engines, each a Docker-in-Docker container
 * (scripts/swarm.sh), one manager and two workers. Set up and torn down by this suite.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { dockerOptions } from '../src/docker/docker-options';
import { auth, gql, startHarness, uniqueSlug, type Harness } from './harness';
import { eventually } from './receivers';

const run = promisify(execFile);
/** The images the cluster's services run: loaded into every node (there is no registry). */
const NODE_IMAGES = 'berth/busybox:latest berth/mariadb:10.11';
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

let h: Harness;
let manager: Docker;
let byHost: Record<string, NodeBody>;

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
  manager = new Docker(dockerOptions(url));
  // What Berth may book on each node (the engines report the host's memory, three times over).
  for (const n of await manager.listNodes()) {
    const node = manager.getNode(n.ID);
    const info = await node.inspect();
    const mb = ROOM[info.Description.Hostname as keyof typeof ROOM];
    const labels = { ...(info.Spec.Labels ?? {}), 'berth.memory-mb': String(mb), 'berth.cpus': '2' };
    delete labels['berth.cordoned'];
    await node.update({ _query: { version: info.Version.Index }, _body: { ...info.Spec, Labels: labels } });
  }
  await h?.stop();
  h = await startHarness({ BERTH_ENGINE: 'swarm', DOCKER_HOST: url, BERTH_DB_MEMORY_MB: '256', BERTH_DB_CPUS: '0.25' });
  // Tenants of earlier runs booked nothing on this fresh cluster: forget their nodes.
  await h.db.query('UPDATE "Tenant" SET "nodeId" = NULL');
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
    // Sites are not provisioned on a cluster yet: refused before anything is written.
    const site = await h.http.post('/v1/sites').set(auth(key)).send({ name: 'early' });
    expect([site.status, site.body.code]).toEqual([501, 'NOT_SUPPORTED']);
    expect((await h.db.query('SELECT id FROM "Site" WHERE "tenantId" = $1', [t.body.id])).rows).toEqual([]);
    const g = await gql<{ nodes: { hostname: string; capacity: { memoryMb: number } }[] }>(
      h,
      h.admin,
      '{ nodes { hostname capacity { memoryMb } } }',
    );
    expect(g.data?.nodes.map((n) => n.capacity.memoryMb)).toEqual([3000, 2000, 1000]);
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

async function setLabel(id: string, key: string, value: string) {
  const node = manager.getNode(id);
  const info = await node.inspect();
  await node.update({ _query: { version: info.Version.Index }, _body: { ...info.Spec, Labels: { ...info.Spec.Labels, [key]: value } } });
}
