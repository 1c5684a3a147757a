/**
 * npm run bench:swarm (bench/swarm.sh makes the cluster): the same work on this machine's single
 * Docker Engine and on the local three-node Swarm, in one run, then a node failure.
 *
 *  1. single engine: BENCH_SWARM_SITES sites (default 30) over BENCH_SWARM_TENANTS tenants (10),
 *     all asked for at once; throughput and time per site (POST → job SUCCEEDED);
 *  2. the Swarm: the same, each tenant on the node with the most room, every site routed
 *     through the edge service and checked there (work a single engine without an edge does
 *     not do: labelled);
 *  3. a worker node killed: the time until every site of its tenants is DOWN (goal 30 s), and
 *     after it is started again, until they are all UP, with the sites on other nodes watched;
 *  4. the reconciler's pass as the cluster grows to BENCH_SWARM_RECONCILE_SIZES sites (default
 *     100, 300 and 1,000) over 10 tenants: each site is stopped as soon as it is asked for, so
 *     its service has no task (a thousand running sites do not fit on this machine; a pass
 *     reads services, not tasks); at each size, the mean of 5 passes and its cost per service.
 *
 * BENCH_SWARM_PHASES (default "provision,failure,reconcile") runs some of them.
 *
 * Both use the real MariaDB image and Berth's stand-in WordPress image (berth/stub-wordpress: the
 * real one would be loaded into three nodes by `docker save | docker load`); the figures say so.
 * The three nodes are containers on this same 2-core machine: the cluster adds work (three
 * engines, overlay networking), not cores, so its throughput is compared, not expected higher.
 */
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import {
  Api,
  emptyDatabase,
  machineInfo,
  median,
  now,
  percentile,
  removeLabelled,
  round,
  run,
  sleep,
  startBerth,
  type BerthProcess,
} from './support';

const ROOT = resolve(__dirname, '../..');
const OUT = join(ROOT, 'bench/.out');
const SITES = Number(process.env.BENCH_SWARM_SITES ?? 30);
const TENANTS = Number(process.env.BENCH_SWARM_TENANTS ?? 10);
const ADMIN_KEY = `berth_bench-${randomBytes(24).toString('base64url')}`;
const MANAGER = process.env.BERTH_SWARM_MANAGER as string;
/** The client's certificate and the cluster's CA: the nodes' engines answer over TLS only. */
const CERTS = process.env.BERTH_SWARM_CERT_PATH as string;
const EDGE = process.env.BERTH_EDGE_ADDRESS as string;
/** Small sites, so that Swarm's reservations (a node reports this machine's 2 cores) fit 30 of them. */
const SITE_RESOURCES = { memoryMb: 128, cpus: 0.1 };
const TENANT = { maxMemoryMb: 256, maxCpus: 0.1, maxSites: 10 };
const METRICS_TOKEN = randomBytes(16).toString('hex');
const PHASES = new Set((process.env.BENCH_SWARM_PHASES ?? 'provision,failure,reconcile').split(','));
const RECONCILE_SIZES = (process.env.BENCH_SWARM_RECONCILE_SIZES ?? '100,300,1000').split(',').map(Number);
const log = (m: string) => console.error(`[bench:swarm] ${m}`);

/** The mean of Berth's completed reconciler passes so far (from its metrics), and how many. */
async function reconcilePasses(api: Api): Promise<{ passes: number; meanMs: number }> {
  const text = (await api.must<string>('GET', '/metrics', METRICS_TOKEN)).body;
  const read = (what: string) =>
    Number(new RegExp(`^berth_reconcile_pass_duration_seconds_${what}\\{result="ok"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const passes = read('count');
  return { passes, meanMs: round((read('sum') / passes) * 1000, 1) };
}

interface Phase {
  label: string;
  sites: number;
  tenants: number;
  wallS: number;
  sitesPerMinute: number;
  medianS: number;
  p95S: number;
  maxS: number;
  failed: number;
  load1Before: number;
}

async function berth(name: string, env: Record<string, string>): Promise<{ p: BerthProcess; api: Api; db: Client }> {
  const url = await emptyDatabase(process.env.DATABASE_URL as string, `berth_bench_${name}`);
  const p = await startBerth(
    ROOT,
    {
      ...process.env,
      NODE_ENV: 'production',
      PORT: '0',
      DATABASE_URL: url,
      REDIS_URL: `${(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').replace(/\/\d*$/, '')}/14`,
      BERTH_INSTANCE: `bench${name}`,
      BERTH_ADMIN_KEY: ADMIN_KEY,
      BERTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      BERTH_WORDPRESS_IMAGE: 'berth/stub-wordpress:latest',
      BERTH_DB_IMAGE: 'berth/mariadb:10.11',
      BERTH_DB_MEMORY_MB: '256',
      BERTH_DB_CPUS: '0.1',
      BERTH_BACKUP_SCHEDULER_MS: '86400000',
      BERTH_LOG_LEVEL: 'warn',
      BERTH_METRICS_TOKEN: METRICS_TOKEN,
      ...env,
    },
    join(OUT, `swarm-${name}-berth.log`),
    join(OUT, `swarm-${name}-berth.pid`),
  );
  const db = new Client({ connectionString: url });
  await db.connect();
  return { p, api: new Api(p.url), db };
}

/** Tenants, then every site asked for at once; each site's time is its job's, from the API's own clock. */
async function provision(label: string, api: Api): Promise<{ phase: Phase; sites: { id: string; key: string; tenant: string }[] }> {
  const tenants: { id: string; key: string }[] = [];
  for (let i = 0; i < TENANTS; i++) {
    const slug = `b${i}-${randomBytes(3).toString('hex')}`;
    const t = await api.must('POST', '/v1/tenants', ADMIN_KEY, { slug, name: slug, contactEmail: `ops@${slug}.example`, ...TENANT });
    const k = await api.must('POST', `/v1/tenants/${t.body.id}/api-keys`, ADMIN_KEY, {});
    tenants.push({ id: t.body.id, key: k.body.key });
  }
  const load1Before = round(os.loadavg()[0], 2);
  const t0 = Date.now();
  const asked = await Promise.all(
    Array.from({ length: SITES }, (_, i) => {
      const t = tenants[i % TENANTS];
      return api
        .must('POST', '/v1/sites', t.key, { name: `site${Math.floor(i / TENANTS)}`, resources: SITE_RESOURCES })
        .then((r) => ({ id: r.body.site.id as string, job: r.body.job.id as string, key: t.key, tenant: t.id }));
    }),
  );
  const times: number[] = [];
  let failed = 0;
  let last = t0;
  for (const a of asked) {
    for (;;) {
      const j = (await api.must('GET', `/v1/jobs/${a.job}`, a.key)).body;
      if (!['QUEUED', 'RUNNING'].includes(j.status)) {
        if (j.status !== 'SUCCEEDED') {
          failed += 1;
          log(`${label}: job ${a.job} ${j.status}: ${j.error}`);
        }
        const end = Date.parse(j.finishedAt);
        times.push((end - Date.parse(j.createdAt)) / 1000);
        last = Math.max(last, end);
        break;
      }
      await sleep(500);
    }
  }
  const wallS = (last - t0) / 1000;
  const phase = {
    label,
    sites: SITES,
    tenants: TENANTS,
    wallS: round(wallS, 1),
    sitesPerMinute: round((SITES - failed) / (wallS / 60), 1),
    medianS: round(median(times), 1),
    p95S: round(percentile(times, 95), 1),
    maxS: round(Math.max(...times), 1),
    failed,
    load1Before,
  };
  log(JSON.stringify(phase));
  return { phase, sites: asked };
}

/** Seconds until `check` holds (polled every 250 ms), or undefined after `limitS`. */
async function until(check: () => Promise<boolean>, limitS: number): Promise<number | undefined> {
  const t0 = now();
  while (now() - t0 < limitS * 1000) {
    if (await check()) return round((now() - t0) / 1000, 1);
    await sleep(250);
  }
  return undefined;
}

/** Berth's settings on the local cluster (its manager, the nodes' engines, the edge service). */
const onSwarm = () => ({
  BERTH_ENGINE: 'swarm',
  DOCKER_HOST: MANAGER,
  DOCKER_TLS_VERIFY: '1',
  DOCKER_CERT_PATH: CERTS,
  BERTH_SWARM_NODE_ENGINE: 'tcp://{address}:2376',
  BERTH_EDGE_ADMIN_URL: `http://${EDGE}:2019`,
  BERTH_EDGE_ADMIN_LISTEN: ':2019',
  BERTH_EDGE_ADDRESS: EDGE,
  BERTH_EDGE_HTTP_PORT: '80',
  BERTH_EDGE_HTTPS_PORT: '443',
  BERTH_TLS: 'off',
});

/** Sets what Berth may book on every node (node labels berth.memory-mb and berth.cpus). */
async function bookable(manager: Docker, memoryMb: number, cpus: number): Promise<void> {
  for (const n of await manager.listNodes()) {
    const node = manager.getNode(n.ID);
    const info = await node.inspect();
    await node.update({
      _query: { version: info.Version.Index },
      _body: { ...info.Spec, Labels: { ...(info.Spec.Labels ?? {}), 'berth.memory-mb': String(memoryMb), 'berth.cpus': String(cpus) } },
    });
  }
}

/** 4. The reconciler's pass at each of RECONCILE_SIZES sites (stopped: services without a task). */
async function reconcileAtScale(manager: Docker): Promise<Record<string, unknown>[]> {
  // Berth books each site at its limits; a service without a task reserves nothing in Swarm.
  await bookable(manager, 10_000_000, 100_000);
  const b = await berth('scale', {
    ...onSwarm(),
    BERTH_SUBNET_POOL: '10.93.0.0/16',
    BERTH_RECONCILE_INTERVAL_MS: '3000',
    BERTH_RATE_LIMIT_PER_MINUTE: '0',
  });
  const instance = { filters: { label: ['berth.instance=benchscale'] } };
  const results: Record<string, unknown>[] = [];
  try {
    const tenants: { key: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const slug = `r${i}-${randomBytes(3).toString('hex')}`;
      const t = await b.api.must('POST', '/v1/tenants', ADMIN_KEY, {
        slug,
        name: slug,
        contactEmail: `ops@${slug}.example`,
        maxSites: 1000,
        maxMemoryMb: 128,
        maxCpus: 0.1,
      });
      tenants.push({ key: (await b.api.must('POST', `/v1/tenants/${t.body.id}/api-keys`, ADMIN_KEY, {})).body.key });
    }
    const active = async () =>
      (await b.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "Job" WHERE status IN ('QUEUED', 'RUNNING')`)).rows[0].n;
    const repairs = async () => (await b.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "Job" WHERE kind = 'REPAIR'`)).rows[0].n;
    let made = 0;
    for (const size of RECONCILE_SIZES) {
      const t0 = Date.now();
      while (made < size) {
        const batch = Array.from({ length: Math.min(25, size - made) }, (_, i) => made + i);
        await Promise.all(
          batch.map(async (i) => {
            const key = tenants[i % tenants.length].key;
            const site = await b.api.must('POST', '/v1/sites', key, { name: `site${i}`, resources: SITE_RESOURCES });
            await b.api.must('POST', `/v1/sites/${site.body.site.id}/stop`, key);
          }),
        );
        made += batch.length;
        while ((await active()) > 100) await sleep(1000);
      }
      while ((await active()) > 0) await sleep(1000);
      const services = (await manager.listServices(instance)).length;
      log(`reconciler at ${size} sites: ${services} services made in ${round((Date.now() - t0) / 1000)} s`);
      const before = await reconcilePasses(b.api);
      const repairsBefore = await repairs();
      while ((await reconcilePasses(b.api)).passes < before.passes + 5) await sleep(500);
      const after = await reconcilePasses(b.api);
      const meanMs = round((after.meanMs * after.passes - before.meanMs * before.passes) / (after.passes - before.passes), 1);
      const result = {
        sites: size,
        services,
        passes: after.passes - before.passes,
        meanMsPerPass: meanMs,
        msPerService: round(meanMs / services, 2),
        repairsEnqueued: (await repairs()) - repairsBefore,
      };
      log(`reconciler: ${JSON.stringify(result)}`);
      results.push(result);
    }
  } finally {
    await b.p.stop();
    await b.db.end();
  }
  return results;
}

/** Phases 1 to 3: the same sites on the single engine and on the cluster, then a node killed (if asked for). */
async function provisionAndFail(
  host: Docker,
  manager: Docker,
  phases: Phase[],
): Promise<{ failure?: Record<string, unknown>; reconcile?: Record<string, unknown> }> {
  // 1. The single engine.
  log('single engine: provisioning');
  await removeLabelled(host, ['berth.instance=benchsingle']);
  const single = await berth('single', {
    BERTH_ENGINE: 'docker',
    BERTH_EDGE: 'none',
    BERTH_PORT_RANGE: '29600-29699',
    BERTH_SUBNET_POOL: '10.94.0.0/16',
  });
  try {
    phases.push((await provision('single engine (no edge)', single.api)).phase);
  } finally {
    await single.p.stop();
    await single.db.end();
    await removeLabelled(host, ['berth.instance=benchsingle']);
  }

  // 2. The Swarm: room for every tenant (Berth books a database server and one site at the
  // ceiling per tenant: 512 MiB, 0.2 CPU), spread by the most free room.
  await bookable(manager, 4000, 2);
  log('swarm: provisioning');
  const swarm = await berth('swarm', { ...onSwarm(), BERTH_SUBNET_POOL: '10.95.0.0/16', BERTH_RECONCILE_INTERVAL_MS: '2000' });
  let failure: Record<string, unknown> | undefined;
  let reconcile: Record<string, unknown> | undefined;
  try {
    const { phase } = await provision('three-node Swarm (through the edge)', swarm.api);
    phases.push(phase);
    // Passes over the cluster's services once they are all there.
    const before = await reconcilePasses(swarm.api);
    while ((await reconcilePasses(swarm.api)).passes < before.passes + 5) await sleep(1000);
    const after = await reconcilePasses(swarm.api);
    reconcile = {
      services: SITES + TENANTS,
      passes: after.passes - before.passes,
      meanMsPerPass: round((after.meanMs * after.passes - before.meanMs * before.passes) / (after.passes - before.passes), 1),
    };
    log(`reconciler: ${JSON.stringify(reconcile)}`);

    if (!PHASES.has('failure')) return { reconcile };
    // 3. A worker node with tenants dies, and comes back.
    const nodes = (await swarm.api.must('GET', '/v1/nodes', ADMIN_KEY)).body as {
      id: string;
      hostname: string;
      role: string;
      tenants: string[];
    }[];
    const victim = nodes.find((n) => n.role === 'worker' && n.tenants.length > 0);
    if (!victim) throw new Error('no worker node holds a tenant');
    const health = async (onVictim: boolean) =>
      (
        await swarm.db.query<{ health: string; n: number }>(
          `SELECT s.health, count(*)::int AS n FROM "Site" s JOIN "Tenant" t ON t.id = s."tenantId"
           WHERE s.status = 'RUNNING' AND (t."nodeId" = $1) = $2 GROUP BY s.health`,
          [victim.id, onVictim],
        )
      ).rows;
    const count = (rows: { health: string; n: number }[], h: string) => rows.find((r) => r.health === h)?.n ?? 0;
    const total = (rows: { health: string; n: number }[]) => rows.reduce((a, r) => a + r.n, 0);
    await until(async () => count(await health(true), 'UP') === total(await health(true)) && total(await health(true)) > 0, 60);
    const onVictim = total(await health(true));
    const k = victim.hostname.replace('berth-swarm-', '');
    log(`killing ${victim.hostname} (${onVictim} sites)`);
    await run('bash', [join(ROOT, 'scripts/swarm.sh'), 'kill', k]);
    const downS = await until(async () => count(await health(true), 'DOWN') === onVictim, 60);
    const othersDown = count(await health(false), 'DOWN');
    await run('bash', [join(ROOT, 'scripts/swarm.sh'), 'start', k]);
    const upS = await until(async () => count(await health(true), 'UP') === onVictim, 300);
    failure = { node: victim.hostname, sites: onVictim, allDownAfterS: downS ?? '> 60', othersDown, allUpAgainAfterS: upS ?? '> 300' };
    log(JSON.stringify(failure));
  } finally {
    await swarm.p.stop();
    await swarm.db.end();
  }

  return { failure, reconcile };
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  if (!MANAGER || !EDGE || !CERTS)
    throw new Error('BERTH_SWARM_MANAGER, BERTH_SWARM_CERT_PATH and BERTH_EDGE_ADDRESS are not set: run bench/swarm.sh');
  const host = new Docker({ socketPath: '/var/run/docker.sock' });
  // Over TLS with the cluster's client certificate, as Berth reaches it (DOCKER_CERT_PATH's layout).
  const url = new URL(MANAGER.replace(/^tcp:/, 'https:'));
  const [ca, cert, key] = ['ca.pem', 'cert.pem', 'key.pem'].map((f) => readFileSync(join(CERTS, f)));
  const manager = new Docker({ host: url.hostname, port: Number(url.port), protocol: 'https', ca, cert, key });
  const machine = await machineInfo(host);

  const phases: Phase[] = [];
  const later = PHASES.has('provision') ? await provisionAndFail(host, manager, phases) : {};
  const scale = PHASES.has('reconcile') ? await reconcileAtScale(manager) : undefined;
  const [s, w] = phases;
  const report = {
    when: new Date().toISOString(),
    machine,
    images: 'berth/mariadb:10.11 (real) and berth/stub-wordpress (stand-in WordPress)',
    phases,
    swarmThroughputVsSingle: w && s ? round(w.sitesPerMinute / s.sitesPerMinute, 2) : undefined,
    nodeFailure: later.failure,
    // Wall time of a pass (its list calls to the manager included), at the provisioning phase's size.
    reconcilePass: later.reconcile,
    // The same, as the cluster grows (stopped sites: services without a task).
    reconcileAtScale: scale,
  };
  console.log(JSON.stringify(report, null, 2));
}

main().catch((e: Error) => {
  console.error(e);
  process.exit(1);
});
