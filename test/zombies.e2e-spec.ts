import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { TEST_INSTANCE } from './env';
import { auth, createTenant, exec, startHarness, waitForJob, type Harness } from './harness';
import { eventually } from './receivers';
import { removeSuiteObjects } from './suite-helpers';

// A timed-out `docker exec` or health check leaves its children behind; they are re-parented
// to the container's PID 1. mariadbd as PID 1 never reaps them, so each one stays a zombie
// holding a PID of the container's PID limit. Berth's containers run an init as PID 1.

const DB_IMAGE = 'berth/mariadb:10.11';
/** What a timed-out exec leaves: a child that outlives the process Docker started. */
const ORPHAN = ['sh', '-c', 'sleep 0.2 & exit 0'];
const BURST = 20;

let h: Harness;
let slug: string;
let key: string;
let siteId: string;
let control: Docker.Container;

/** The container's processes as the host's `ps` sees them (no exec into the container). */
async function processes(name: string): Promise<{ pid: number; stat: string; comm: string }[]> {
  const top = (await h.docker.getContainer(name).top({ ps_args: '-o pid,stat,comm' })) as { Titles: string[]; Processes: string[][] };
  const [pid, stat, comm] = ['PID', 'STAT', 'COMMAND'].map((t) => top.Titles.indexOf(t));
  return top.Processes.map((p) => ({ pid: Number(p[pid]), stat: p[stat], comm: p[comm] }));
}
/**
 * The container's zombies: `docker top` lists only live processes (a zombie has left its
 * cgroup), so count the host's processes in state Z whose parent is one of the container's.
 */
async function zombies(name: string): Promise<number> {
  const parents = new Set((await processes(name)).map((p) => String(p.pid)));
  let n = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue; // gone
    }
    if (/^State:\s+Z/m.test(status) && parents.has(status.match(/^PPid:\s+(\d+)/m)?.[1] ?? '')) n += 1;
  }
  return n;
}
/** The command running as the container's PID 1. */
async function pid1(name: string): Promise<string | undefined> {
  const { State } = await h.docker.getContainer(name).inspect();
  return (await processes(name)).find((p) => p.pid === State.Pid)?.comm;
}

async function berthContainer(role: string): Promise<Docker.ContainerInspectInfo> {
  const [c] = await h.docker.listContainers({
    all: true,
    filters: { label: [`berth.instance=${TEST_INSTANCE}`, `berth.tenant=${slug}`, `berth.role=${role}`] },
  });
  if (!c) throw new Error(`no ${role} container for tenant ${slug}`);
  return h.docker.getContainer(c.Id).inspect();
}

beforeAll(async () => {
  h = await startHarness();
  // The positive control: Berth's database image as a plain `docker run` makes it (no init).
  const controlReady = (async () => {
    control = await h.docker.createContainer({
      name: `zombie-control-${TEST_INSTANCE}-${randomBytes(3).toString('hex')}`,
      Image: DB_IMAGE,
      Env: [`MARIADB_ROOT_PASSWORD=${randomBytes(12).toString('hex')}`],
      Labels: { 'berth.instance': TEST_INSTANCE },
      HostConfig: { Tmpfs: { '/var/lib/mysql': 'rw,size=256m' }, Memory: 512 * 1024 * 1024 },
    });
    await control.start();
    // until the entrypoint (bash, which does reap) has exec'd mariadbd
    await eventually(async () => (await pid1(control.id)) === 'mariadbd', 'mariadbd as PID 1 of the control container', 120_000, 250);
  })();
  const created = await createTenant(h);
  slug = created.tenant.slug;
  key = created.key;
  const res = await h.http.post('/v1/sites').set(auth(key)).send({ name: 'zombies' });
  if (res.status !== 202) throw new Error(`POST /v1/sites: ${res.status} ${JSON.stringify(res.body)}`);
  siteId = res.body.site.id;
  const [job] = await Promise.all([waitForJob(h, key, res.body.job.id), controlReady]);
  if (job.status !== 'SUCCEEDED') throw new Error(`provisioning failed: ${JSON.stringify(job)}`);
});

afterAll(async () => {
  await control?.remove({ force: true }).catch(() => undefined);
  if (siteId) {
    const del = await h.http.delete(`/v1/sites/${siteId}`).set(auth(key));
    if (del.status === 202) await waitForJob(h, key, del.body.job.id);
  }
  // The tenant's network and database server (there is no tenant deletion to ask for yet).
  const filters = { label: [`berth.instance=${TEST_INSTANCE}`, `berth.tenant=${slug}`] };
  for (const c of await h.docker.listContainers({ all: true, filters })) await h.docker.getContainer(c.Id).remove({ force: true, v: true });
  for (const n of await h.docker.listNetworks({ filters }))
    await h.docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => undefined);
  for (const v of (await h.docker.listVolumes({ filters })).Volumes ?? [])
    await h.docker
      .getVolume(v.Name)
      .remove({ force: true })
      .catch(() => undefined);
  await h.stop();
  await removeSuiteObjects();
});

describe('orphaned processes', () => {
  it('runs an init as PID 1 in every container Berth makes', async () => {
    for (const role of ['db', 'wordpress']) expect((await berthContainer(role)).HostConfig.Init).toBe(true);
    const db = await berthContainer('db');
    expect(await pid1(db.Id)).toBe('docker-init');
    expect((await processes(db.Id)).map((p) => p.comm)).toContain('mariadbd');
  });

  it('keeps the zombie count of a Berth database server flat through a burst of orphan-leaving execs; the image without an init piles them up', async () => {
    const db = (await berthContainer('db')).Id;
    const before = { berth: await zombies(db), control: await zombies(control.id) };
    const targets = Array.from({ length: BURST }, () => [db, control.id]).flat();
    for (let i = 0; i < targets.length; i += 4) {
      const results = await Promise.all(targets.slice(i, i + 4).map((c) => exec(h.docker, c, ORPHAN)));
      expect(results.map((r) => r.code)).toEqual(results.map(() => 0));
    }
    // Once every orphan of the control has died (and stayed a zombie), every orphan of the
    // Berth server, started at the same moments, has died too.
    await eventually(
      async () => (await zombies(control.id)) >= before.control + BURST,
      `${BURST} zombies in the control container`,
      30_000,
      200,
    );
    expect(await zombies(db)).toBeLessThanOrEqual(before.berth);
  });
});
