// What idle sites cost the host: N idle sites of one tenant (stub WordPress + the tenant's
// MariaDB server, created with Berth's create options from dist/, built by `npm run build`),
// measured for SECONDS with the old container settings (the images' own health checks every
// 3-5 s, no init) and then with the current plan's (long-interval health checks, init).
//
//   node bench/.out/idle-cpu.js [N=10] [SECONDS=60]      (compile with tsc -p bench/tsconfig.json)
//
// CPU is read from /proc: the machine (/proc/stat, everything on it, so other work on a
// shared machine shows up there), dockerd and containerd, the containers' shims with their
// reaped children (each exec's runc lands there) and the containers' own cgroups (the servers
// and the health check commands). "own" is the sites' shims and cgroups; dockerd and
// containerd serve everything on the engine. Scaled to 100 sites linearly.
import Docker from 'dockerode';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { answers, createPlan, machineCpu, planSettings, removeLabelled, round, sleep, type BenchPlan } from './support';

type Create = Docker.ContainerCreateOptions & { name: string; HostConfig: Docker.HostConfig; Healthcheck?: unknown };
interface PlanOut {
  networks: { name: string; subnet: string; gateway: string; labels: Record<string, string> }[];
  volumes: { name: string; labels: Record<string, string> }[];
  containers: { create: Create }[];
}
interface PlanModule {
  planTenant(t: object, s: object): PlanOut;
  planSite(t: object, site: object, s: object): PlanOut;
}
interface DatabaseModule {
  readGreeting(host: string, port: number): Promise<{ ok: boolean }>;
}

/** Berth's compiled code (`npm run build`); BERTH_DIST points elsewhere (a copy of another build). */
const DIST = process.env.BERTH_DIST ?? resolve(__dirname, '../../dist');
const INSTANCE = 'idle-cpu';
const N = Number(process.argv[2] ?? 10);
const SECONDS = Number(process.argv[3] ?? 60);
const TICK = 100;
const docker = new Docker({ socketPath: (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '') });
const log = (msg: string) => process.stdout.write(`${msg}\n`);

const settings = planSettings(INSTANCE, '10.93.0.0/16');

/** CPU seconds of a process, and with its reaped children. */
function procCpu(pid: string): { self: number; withChildren: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return { self: (f[11] + f[12]) / TICK, withChildren: (f[11] + f[12] + f[13] + f[14]) / TICK };
}

function sample(ids: string[]) {
  let dockerd = 0;
  let containerd = 0;
  let shims = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
      if (comm === 'dockerd') dockerd += procCpu(d).self;
      else if (comm === 'containerd') containerd += procCpu(d).self;
      else if (comm.startsWith('containerd-shim')) {
        const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        if (ids.includes(args[args.indexOf('-id') + 1])) shims += procCpu(d).withChildren;
      }
    } catch {
      // gone
    }
  }
  const cgroups = ids.reduce((sum, id) => {
    try {
      return sum + Number(readFileSync(`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`, 'utf8')) / 1e9;
    } catch {
      return sum;
    }
  }, 0);
  return { machine: machineCpu().busy, dockerd, containerd, shims, cgroups };
}

async function up(mode: 'old' | 'new', plans: PlanModule, database: DatabaseModule): Promise<string[]> {
  const t = {
    slug: `idle${mode}`,
    networkIndex: mode === 'old' ? 1 : 2,
    dbRootPassword: 'idle-root-password-0123',
    dbRootPasswordSealed: 'bench-not-sealed',
    maxMemoryMb: 128,
    maxCpus: 1,
  };
  const all = [plans.planTenant(t, settings)];
  for (let i = 0; i < N; i++) {
    const site = {
      id: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
      name: `s${i}`,
      env: {},
      restartPolicy: 'unless-stopped',
      memoryMb: null,
      cpus: null,
      dbName: `wp_${i}`,
      dbUser: `wp_${i}`,
      dbPassword: 'idle-site-password-0123',
      dbPasswordSealed: 'bench-not-sealed',
      hostPort: 33000 + (mode === 'old' ? 0 : 500) + i,
      running: true,
    };
    all.push(plans.planSite(t, site, settings));
  }
  const ids: string[] = [];
  // the old settings: the images' own health checks (every 3-5 s) and no init
  const old = (create: BenchPlan['containers'][number]['create']) => ({
    ...create,
    Healthcheck: undefined,
    HostConfig: { ...create.HostConfig, Init: false },
  });
  for (const plan of all) ids.push(...(await createPlan(docker, plan, mode === 'old' ? old : undefined)));
  // settled: the database server greets and every site answers
  const db = await docker.getContainer(ids[0]).inspect();
  const address = Object.values(db.NetworkSettings.Networks)[0].IPAddress;
  for (
    let i = 0;
    !(await database.readGreeting(address, 3306).then(
      (g) => g.ok,
      () => false,
    ));
    i++
  ) {
    if (i > 600) throw new Error('the database server did not come up');
    await sleep(500);
  }
  for (let i = 0; i < N; i++) {
    const port = 33000 + (mode === 'old' ? 0 : 500) + i;
    for (let k = 0; !(await answers(`http://127.0.0.1:${port}/`)); k++) {
      if (k > 600) throw new Error(`site ${i} did not answer`);
      await sleep(500);
    }
  }
  return ids;
}

async function measure(mode: 'old' | 'new', plans: PlanModule, database: DatabaseModule) {
  const ids = await up(mode, plans, database);
  const a = sample(ids);
  const t0 = Date.now();
  await sleep(SECONDS * 1000);
  const b = sample(ids);
  const wall = (Date.now() - t0) / 1000;
  await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
  const pct = (x: number) => round((100 * x) / wall, 1);
  const r = {
    mode,
    machinePct: pct(b.machine - a.machine),
    dockerdPct: pct(b.dockerd - a.dockerd),
    containerdPct: pct(b.containerd - a.containerd),
    shimsAndRuncPct: pct(b.shims - a.shims),
    containersPct: pct(b.cgroups - a.cgroups),
  };
  // the sites' own: their shims (with each exec's runc) and cgroups; dockerd and containerd also serve other work
  const own = r.shimsAndRuncPct + r.containersPct;
  const all = own + r.dockerdPct + r.containerdPct;
  return {
    ...r,
    ownPct: round(own, 1),
    ownPer100SitesPct: round((own * 100) / N, 1),
    withEnginePct: round(all, 1),
    withEnginePer100SitesPct: round((all * 100) / N, 1),
  };
}

async function main(): Promise<void> {
  // Berth's own build, loaded at run time (bench/ compiles apart from src/).
  /* eslint-disable @typescript-eslint/no-require-imports */
  const plans = require(join(DIST, 'sites/site-plan.js')) as PlanModule;
  const database = require(join(DIST, 'sites/site-database.js')) as DatabaseModule;
  /* eslint-enable @typescript-eslint/no-require-imports */
  await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
  log(`idle CPU: ${N} idle sites (stub WordPress) + 1 MariaDB server, ${SECONDS} s each; % of one core`);
  const rows = [await measure('old', plans, database), await measure('new', plans, database)];
  const cols: [string, (r: (typeof rows)[number]) => string | number][] = [
    ['mode', (r) => r.mode],
    ['machine', (r) => r.machinePct],
    ['dockerd', (r) => r.dockerdPct],
    ['containerd', (r) => r.containerdPct],
    ['shims+runc', (r) => r.shimsAndRuncPct],
    ['containers', (r) => r.containersPct],
    ['own', (r) => r.ownPct],
    ['own/100 sites', (r) => r.ownPer100SitesPct],
    ['own+engine', (r) => r.withEnginePct],
    ['own+engine/100 sites', (r) => r.withEnginePer100SitesPct],
  ];
  log(cols.map(([t]) => t).join('  '));
  for (const r of rows) log(cols.map(([t, f]) => String(f(r)).padStart(t.length)).join('  '));
  log(JSON.stringify({ sites: N, seconds: SECONDS, rows }));
}

process.once('SIGINT', () => void removeLabelled(docker, [`berth.instance=${INSTANCE}`]).finally(() => process.exit(130)));
main().catch(async (e: Error) => {
  process.stderr.write(`idle-cpu failed: ${e.stack ?? e.message}\n`);
  await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
  process.exitCode = 1;
});
