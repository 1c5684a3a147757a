/**
 * What a new tenant's database server's first start costs, alone and beside the WordPress
 * container a site's job starts at the same moment (issue 6/6's goal "a new tenant's database
 * server ready ≤ 0.5 s median"). bench.ts measures it inside a site's provisioning; this
 * takes it apart. Each round, in turn (the order rotates):
 *   alone           the server by itself;
 *   beside-wp       the server and a real WordPress container (berth/wordpress:6.1) started
 *                   together, as a site's job does;
 *   beside-stub     the same with the stand-in image bench.ts uses.
 * The containers are made from Berth's own plan (dist/sites/site-plan.js: the same create
 * options, hardening, limits, network and volumes), on a network of their own; the figure is
 * the bench's: from the server container's StartedAt to its "ready for connections" line
 * (docker logs -t). The machine's load before each measurement is recorded.
 *
 * Run by bench/db-start.sh (`npm run bench:db`, and `npm run bench` unless BENCH_ONLY leaves
 * out `db`). BENCH_ROUNDS rounds (default 7) after one warm-up round.
 */
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import {
  backgroundBusy,
  createPlan,
  machineInfo,
  median,
  now,
  planSettings,
  removeLabelled,
  round,
  run,
  sleep,
  type BenchPlan,
} from './support';

const ROOT = resolve(__dirname, '../..');
const INSTANCE = 'bench-db';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
/* eslint-disable @typescript-eslint/no-require-imports -- Berth's own plan, from its build */
const plan = require(join(ROOT, 'dist/sites/site-plan.js')) as {
  planTenant: (t: unknown, s: unknown) => BenchPlan;
  planSite: (t: unknown, site: unknown, s: unknown) => BenchPlan;
};
/* eslint-enable @typescript-eslint/no-require-imports */

type Variant = 'alone' | 'beside-wp' | 'beside-stub';
const VARIANTS: Variant[] = ['alone', 'beside-wp', 'beside-stub'];

/** Its own subnets (bench.ts has 10.90-91, installed-site 10.92-93, idle-cpu 10.93, swarm 10.93-95). */
const settings = (wordpressImage: string) => planSettings(INSTANCE, '10.96.0.0/16', { wordpressImage, dbMemoryMb: 1024 });

const secret = () => randomBytes(18).toString('base64url');

/** One measurement: makes the objects, starts the containers together, returns the server's start → ready. */
async function once(variant: Variant, round: number): Promise<number> {
  const slug = `r${round}${variant.replace('-', '')}`;
  const s = settings(variant === 'beside-stub' ? 'berth/stub-wordpress:latest' : 'berth/wordpress:6.1');
  const tenant = { slug, networkIndex: 1, dbRootPassword: secret(), dbRootPasswordSealed: 'x', maxMemoryMb: 512, maxCpus: 1 };
  const site = {
    id: '00000000-0000-4000-8000-000000000001',
    name: 'site',
    env: {},
    restartPolicy: 'no',
    memoryMb: null,
    cpus: null,
    dbName: 'site',
    dbUser: 'site',
    dbPassword: secret(),
    dbPasswordSealed: 'y',
    hostPort: 0,
    running: true,
  };
  const t = plan.planTenant(tenant, s);
  const w = plan.planSite(tenant, site, s);
  // The network and volumes as the other benches make them; the containers here, to start them together.
  await createPlan(docker, { networks: t.networks, volumes: [...t.volumes, ...w.volumes], containers: [] });
  const db = await docker.createContainer(t.containers[0].create);
  const specs = variant === 'alone' ? [] : w.containers.map((c) => c.create);
  // A port the kernel picks: only one site at a time, but its own port each round.
  for (const c of specs) c.HostConfig.PortBindings = { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] };
  const others = await Promise.all(specs.map((c) => docker.createContainer(c)));
  await Promise.all([db.start(), ...others.map((c) => c.start())]);
  const t0 = now();
  // The figure comes from the log's own times, so asking every 250 ms loses nothing, and each
  // ask (a \`docker logs\` process) takes less from the start it measures.
  for (;;) {
    const logs = await run('sh', ['-c', `docker logs -t ${t.containers[0].create.name} 2>&1`]);
    const line = logs.split('\n').findLast((l) => /ready for connections/.test(l));
    if (line) {
      const started = new Date((await db.inspect()).State.StartedAt).getTime();
      return (new Date(line.split(' ')[0]).getTime() - started) / 1000;
    }
    if (now() - t0 > 60_000) throw new Error(`${variant}: the server was not ready within 60 s:\n${logs}`);
    await sleep(250);
  }
}

async function clean(): Promise<void> {
  await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
}

async function main() {
  const m = await machineInfo(docker);
  await clean();
  const figures: Record<Variant, number[]> = { alone: [], 'beside-wp': [], 'beside-stub': [] };
  const busy: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]);
    for (const v of order) {
      busy.push(await backgroundBusy(undefined));
      const s = await once(v, r);
      await clean();
      if (r > 0) figures[v].push(round(s, 3));
    }
  }
  const lines = [
    `A new tenant's database server's first start (berth/mariadb:10.11, Berth's create options): container started → ready for connections; ${ROUNDS} rounds after a warm-up`,
    `machine: ${m.cores} cores ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}, kernel ${m.kernel}, Docker ${m.dockerEngine}, Node ${m.node}`,
    `machine busy before each measurement (other work): median ${round(median(busy), 1)} % (max ${round(Math.max(...busy), 0)} %)`,
    ...VARIANTS.map((v) => {
      const l = figures[v];
      return `${v.padEnd(12)} median ${round(median(l), 2)} s (min ${Math.min(...l)}, max ${Math.max(...l)}; ${l.join(', ')})   goal ≤ 0.5 s ${median(l) <= 0.5 ? 'met' : 'NOT MET'}`;
    }),
  ];
  console.log(lines.join('\n'));
}

main().catch(async (e) => {
  console.error(e);
  await clean().catch(() => undefined);
  process.exit(1);
});
