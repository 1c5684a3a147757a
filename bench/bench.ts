// npm run bench: measures Berth against the docker CLI script, under load and at scale.
// bench/run.sh sets up services and images, compiles this file and runs it; see bench/README.md.
import autocannon from 'autocannon';
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import {
  answers,
  Api,
  emptyDatabase,
  machineCpu,
  backgroundBusy,
  processCpuS,
  machineInfo,
  median,
  now,
  percentile,
  removeLabelled,
  round,
  rssMiB,
  run,
  Sampler,
  sleep,
  startBerth,
  type BerthProcess,
  type Classifier,
  type CpuReport,
} from './support';

const ROOT = resolve(__dirname, '../..');
const OUT = join(ROOT, 'bench/.out');
const RESULTS = join(ROOT, 'bench/results');
const INSTANCE = 'bench';
const SCRIPT_LABEL = 'berth-bench=script-baseline';
const STUB_IMAGE = 'berth/stub-wordpress:latest';
const DB_IMAGE = 'berth/mariadb:10.11';
const REAL_IMAGE = 'berth/wordpress:6.1';
const REDIS_DB = 14;
const PROFILE = process.env.BENCH_CPU_PROFILE === '1';
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/** How long after a site is done its CPU is still counted (its containers' start-up goes on). */
const SITE_CPU_TAIL_MS = 2000;

const env = process.env;
const int = (name: string, def: number) => (env[name] ? Number(env[name]) : def);
const opts = {
  rounds: int('BENCH_ROUNDS', 5),
  levels: (env.BENCH_LEVELS ?? '1,4,16,50').split(',').map(Number),
  apiRate: int('BENCH_API_RATE', 500),
  apiSeconds: int('BENCH_API_SECONDS', 15),
  apiSites: int('BENCH_API_SITES', 1000),
  apiConnections: int('BENCH_API_CONNECTIONS', 100),
  /** A second, lower rate, to see latency when Berth is not saturated (0: skip). */
  apiRateLow: int('BENCH_API_RATE_LOW', 300),
  scale: env.BENCH_SCALE === '1',
  scaleSites: int('BENCH_SCALE_SITES', 300),
  scaleTenants: int('BENCH_SCALE_TENANTS', 100),
  realRounds: int('BENCH_REAL_ROUNDS', 2),
  /** Before each measurement, wait up to this long for other work on the machine to calm down. */
  quietMaxS: int('BENCH_QUIET_MAX_S', 300),
  quietPct: int('BENCH_QUIET_PCT', 20),
  quietBudgetS: int('BENCH_QUIET_BUDGET_S', 900),
  /** Density: idle sites over tenants, watched by Berth as in production, measured for this long. */
  densitySites: int('BENCH_DENSITY_SITES', 100),
  densityTenants: int('BENCH_DENSITY_TENANTS', 30),
  densitySeconds: int('BENCH_DENSITY_SECONDS', 180),
  /** Comma-separated subset of: single,throughput,api,scale,real,density (default: all). */
  only: env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(',')) : undefined,
};
const wanted = (phase: string) => !opts.only || opts.only.has(phase);

const ADMIN_KEY = `berth_bench-${randomBytes(24).toString('base64url')}`;
// Kept for the whole run: a restarted Berth must open the secrets the first one sealed.
const ENCRYPTION_KEY = randomBytes(32).toString('base64');
const adminDbUrl = env.DATABASE_URL as string;
const benchDbUrl = (() => {
  const u = new URL(adminDbUrl);
  u.pathname = '/berth_bench';
  return u.toString();
})();
const redisUrl = (() => {
  // Test slots use Redis databases 3 to 12 (3 + BERTH_TEST_SLOT): stay clear of them.
  const u = new URL(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  u.pathname = `/${REDIS_DB}`;
  return u.toString();
})();

const docker = new Docker({ socketPath: (env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '') });
// A pool, not a client: it survives PostgreSQL restarting under it (another user of a shared machine).
const db = new Pool({ connectionString: benchDbUrl, max: 2 });
db.on('error', (e) => log(`bench database connection lost (${e.message}); reconnecting`));
const redis = new Redis(redisUrl, { lazyConnect: true });

/** Another process on our Redis database would take our jobs off the queue: refuse to run then. */
async function assertRedisDbFree(): Promise<void> {
  const list = String(await redis.client('LIST'));
  const others = list.split('\n').filter((l) => new RegExp(`\\bdb=${REDIS_DB}\\b`).test(l) && !/cmd=client\|list/.test(l));
  if (others.length) throw new Error(`another process is connected to Redis database ${REDIS_DB}; stop it first:\n${others.join('\n')}`);
}

/** What the database and the queue say about a job, for error messages. */
async function jobDiagnosis(jobId: string): Promise<string> {
  const { rows } = await db.query('SELECT status, attempts, error FROM "Job" WHERE id = $1', [jobId]);
  const bull = await redis.hgetall(`bull:berth-sites:${jobId}`);
  const { data: _data, opts: _opts, ...rest } = bull;
  return `job row ${JSON.stringify(rows[0])}, queue entry ${JSON.stringify(rest)}`;
}
let berth: BerthProcess | undefined;
let api: Api;
let berthRuns = 0;
/** When the current Berth process was spawned (this process's clock), to place a window in its CPU profile. */
let berthStartedAt = 0;

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const sec = (ms: number) => round(ms / 1000, 2);

function berthEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: benchDbUrl,
    REDIS_URL: redisUrl,
    BERTH_INSTANCE: INSTANCE,
    BERTH_ADMIN_KEY: ADMIN_KEY,
    BERTH_ENCRYPTION_KEY: ENCRYPTION_KEY,
    // Its own repository, opened with this run's key (the default one is the dev instance's,
    // which this key cannot open: the daily prune then failed, and was retried, every minute).
    BERTH_BACKUP_REPOSITORY: join(OUT, 'backups'),
    BERTH_WORDPRESS_IMAGE: STUB_IMAGE,
    BERTH_DB_IMAGE: DB_IMAGE,
    BERTH_SUBNET_POOL: '10.90.0.0/16',
    BERTH_SUBNET_PREFIX: '24',
    BERTH_PORT_RANGE: '30000-31999',
    ...extra,
  };
}

async function start(extra: Record<string, string> = {}): Promise<void> {
  await assertRedisDbFree();
  berthRuns += 1;
  // Diagnosis only (the figures then include the profiler's overhead): a V8 CPU profile per Berth run.
  // BENCH_NODE_ARGS: extra flags for Berth's node (experiments, e.g. a V8 heap flag), recorded in the results.
  const nodeArgs = [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(OUT, 'profile')}`] : []), ...NODE_ARGS];
  berthStartedAt = now();
  berth = await startBerth(ROOT, berthEnv(extra), join(OUT, `berth-${berthRuns}.log`), join(OUT, 'berth.pid'), nodeArgs);
  api = new Api(berth.url);
  log(`Berth pid ${berth.pid} listening on ${berth.url} (log: bench/.out/berth-${berthRuns}.log)`);
}

// --- a shared machine ---------------------------------------------------------------------------

/** Which containers are this bench's (by id), for the CPU accounting. */
async function classifier(): Promise<Classifier> {
  const all = await docker.listContainers({ all: true });
  const own = new Map(all.map((c) => [c.Id, c.Labels?.['berth.instance'] === INSTANCE || c.Labels?.['berth-bench'] === 'script-baseline']));
  return { berthPid: berth?.pid, ownContainer: (id) => own.get(id) };
}

async function sampler(intervalMs = 100): Promise<Sampler> {
  return new Sampler(berth!.pid, classifier, await classifier(), intervalMs);
}

/** Containers running on the engine that are neither this bench's Berth's nor the script's. */
async function foreignContainers(): Promise<number> {
  const all = await docker.listContainers({});
  return all.filter((c) => c.Labels?.['berth.instance'] !== INSTANCE && c.Labels?.['berth-bench'] !== 'script-baseline').length;
}

const background: { before: string; waitedS: number; busyPct: number; foreignContainers: number }[] = [];

/**
 * Waits until the rest of the machine (everything but our Berth) uses less than
 * BENCH_QUIET_PCT % of the CPU, for at most BENCH_QUIET_MAX_S (BENCH_QUIET_BUDGET_S in all);
 * records what it found.
 */
async function quiet(before: string): Promise<void> {
  const t0 = now();
  const spent = background.reduce((a, b) => a + b.waitedS, 0);
  const limitMs = Math.max(0, Math.min(opts.quietMaxS, opts.quietBudgetS - spent)) * 1000;
  let busy = await backgroundBusy(berth?.pid);
  while (busy >= opts.quietPct && now() - t0 < limitMs) {
    await sleep(3000);
    busy = await backgroundBusy(berth?.pid);
  }
  const entry = { before, waitedS: sec(now() - t0), busyPct: busy, foreignContainers: await foreignContainers() };
  background.push(entry);
  if (entry.waitedS > 3 || busy >= opts.quietPct)
    log(`  (machine: ${busy}% busy with other work after waiting ${entry.waitedS} s, ${entry.foreignContainers} other containers running)`);
}

// --- tenants and sites ------------------------------------------------------------------------

interface Tenant {
  id: string;
  slug: string;
  key: string;
}

async function createTenant(slug: string): Promise<Tenant> {
  const t = await api.must('POST', '/v1/tenants', ADMIN_KEY, { slug, name: `Bench ${slug}`, contactEmail: `ops@${slug}.example` });
  const k = await api.must('POST', `/v1/tenants/${t.body.id}/api-keys`, ADMIN_KEY, {});
  return { id: t.body.id, slug, key: k.body.key };
}

interface SiteRow {
  id: string;
  name: string;
  status: string;
  url: string | null;
}

/** Every live site (admin view), page by page. */
async function listAllSites(): Promise<SiteRow[]> {
  const all: SiteRow[] = [];
  for (let offset = 0; ; offset += 200) {
    const r = await api.must<SiteRow[]>('GET', `/v1/sites?limit=200&offset=${offset}`, ADMIN_KEY);
    all.push(...r.body);
    if (r.body.length < 200) return all;
  }
}

/**
 * Takes tenants out of the way between measurements: their sites are marked deleted in
 * the database (no delete jobs, which would be extra load) and their Docker objects removed.
 */
async function retire(tenants: Tenant[]): Promise<void> {
  if (!tenants.length) return;
  await db.query(
    `UPDATE "Site" SET status = 'DELETED', "desiredState" = 'ABSENT', "liveName" = NULL, "hostPort" = NULL, "deletedAt" = now(), "updatedAt" = now()
     WHERE "tenantId" = ANY($1::uuid[])`,
    [tenants.map((t) => t.id)],
  );
  for (let i = 0; i < tenants.length; i += 20) {
    await Promise.all(
      tenants.slice(i, i + 20).map((t) => removeLabelled(docker, [`berth.instance=${INSTANCE}`, `berth.tenant=${t.slug}`])),
    );
  }
}

interface StepTimes {
  [step: string]: { p50: number; max: number };
}

/** Queue wait, run time and per-step durations of the jobs that provisioned these sites (from the job rows). */
async function jobBreakdown(siteIds: string[]) {
  const { rows } = await db.query<{
    createdAt: Date;
    startedAt: Date;
    finishedAt: Date;
    attempts: number;
    steps: { name: string; startedAt: string; finishedAt?: string }[];
  }>(`SELECT "createdAt", "startedAt", "finishedAt", attempts, steps FROM "Job" WHERE "siteId" = ANY($1::uuid[]) AND kind = 'PROVISION'`, [
    siteIds,
  ]);
  const wait = rows.map((r) => r.startedAt.getTime() - r.createdAt.getTime());
  const runMs = rows.map((r) => r.finishedAt.getTime() - r.startedAt.getTime());
  const byStep = new Map<string, number[]>();
  for (const r of rows) {
    for (const s of r.steps) {
      if (!s.finishedAt) continue;
      const list = byStep.get(s.name) ?? [];
      list.push(new Date(s.finishedAt).getTime() - new Date(s.startedAt).getTime());
      byStep.set(s.name, list);
    }
  }
  const steps: StepTimes = {};
  for (const [name, list] of byStep) steps[name] = { p50: sec(median(list)), max: sec(Math.max(...list)) };
  return {
    jobs: rows.length,
    retried: rows.filter((r) => r.attempts > 1).length,
    queueWaitS: { p50: sec(median(wait)), max: sec(Math.max(...wait)) },
    runS: { p50: sec(median(runMs)), max: sec(Math.max(...runMs)) },
    stepsS: steps,
  };
}

/** One site for a fresh tenant: POST → answering HTTP (the job's own "wait for HTTP" step) and → job SUCCEEDED. */
async function berthOneSite(tenant: Tenant, name = 'blog', timeoutMs = 180_000) {
  const wall0 = Date.now();
  const t0 = now();
  const post = await api.must('POST', '/v1/sites', tenant.key, { name }, [202], { 'Idempotency-Key': `bench-${tenant.slug}-${name}` });
  const postMs = now() - t0;
  const siteId: string = post.body.site.id;
  const jobId: string = post.body.job.id;
  const deadline = t0 + timeoutMs;
  let job: { status: string; error?: string; steps: { name: string; status: string; finishedAt?: string }[] };
  for (;;) {
    job = (await api.must('GET', `/v1/jobs/${jobId}`, tenant.key)).body;
    if (job.status === 'SUCCEEDED') break;
    if (job.status === 'FAILED') throw new Error(`job ${jobId} failed: ${job.error}`);
    if (now() > deadline) throw new Error(`job ${jobId} still ${job.status}: ${await jobDiagnosis(jobId)}`);
    await sleep(100);
  }
  const runningMs = now() - t0;
  // When the site first answered HTTP: the end of the job's own "wait for HTTP" step. The
  // bench does not probe the site while it starts: a request to the published port before
  // the container's network is up held the site's later connections, Berth's own included,
  // 0.3-0.5 s (the step took 0.45 s with the probe and 0.05 s without, 2026-12-05), and the
  // script is not probed while it runs. The site is asked once, after the job.
  const answered = job.steps.find((x) => x.name === 'wait for HTTP' && x.status === 'succeeded')?.finishedAt;
  if (!answered) throw new Error(`job ${jobId} has no "wait for HTTP" step that succeeded`);
  const httpMs = new Date(answered).getTime() - wall0;
  const url = (await api.must<SiteRow>('GET', `/v1/sites/${siteId}`, tenant.key)).body.url;
  if (!url || !(await answers(url))) throw new Error(`site ${name} of ${tenant.slug} does not answer on ${url} after its job`);
  // names.dbContainer in src/sites/site-plan.ts (bench/ compiles on its own, without src/).
  const db = await dbTimeline(`berth-${INSTANCE}_db_${tenant.slug}`, wall0);
  return { siteId, jobId, postMs, httpMs, runningMs, db };
}

/**
 * The whole machine's CPU seconds for one site: from the start of `work` until
 * SITE_CPU_TAIL_MS after it ends (the containers' own start-up goes on a little after), all
 * processes, the machine's idle work included.
 */
async function machineCpuOf<T>(work: () => Promise<T>): Promise<[T, number]> {
  const m0 = machineCpu();
  const out = await work();
  await sleep(SITE_CPU_TAIL_MS);
  return [out, round(machineCpu().busy - m0.busy, 2)];
}

let scriptRuns = 0;
async function scriptOneSite(wpImage = STUB_IMAGE): Promise<{ ms: number; db?: DbTimeline; cpuS: number }> {
  scriptRuns += 1;
  const n = scriptRuns;
  const wall0 = Date.now();
  // The machine's CPU for the site (as Berth's is measured), before reading the server's log
  // and cleaning up, which are the bench's work.
  const [ms, cpuS] = await machineCpuOf(async () => {
    const t0 = now();
    await run('bash', [join(ROOT, 'bench/script-baseline.sh'), `r${n}`, String(32000 + n), `10.91.${n % 250}.0/24`], {
      ...env,
      BENCH_WP_IMAGE: wpImage,
      BENCH_DB_IMAGE: DB_IMAGE,
    });
    return now() - t0;
  });
  const db = await dbTimeline(`bsl_r${n}_db`, wall0);
  await run('bash', [join(ROOT, 'bench/script-baseline.sh'), '--cleanup']);
  return { ms, db, cpuS };
}

interface DbTimeline {
  /** Seconds after the request (POST or script start) at which the database container started. */
  containerStartedS: number;
  /** How its data directory was made: unpacked from the image's prepared one, or by mariadb-install-db. */
  firstStart: 'prepared' | 'install-db' | 'unknown';
  /** When the final server was ready for connections. */
  readyS: number;
  /** From its container's start to ready for connections: what a new tenant's server costs. */
  startToReadyS: number;
}

/** When the tenant's database server started and became ready, from its own log (docker logs -t). */
async function dbTimeline(container: string, wall0: number): Promise<DbTimeline | undefined> {
  try {
    const info = await docker.getContainer(container).inspect();
    const logs = await run('sh', ['-c', `docker logs -t ${container} 2>&1`]);
    const at = (re: RegExp, last = false) => {
      const lines = logs.split('\n').filter((l) => re.test(l));
      const l = last ? lines.at(-1) : lines[0];
      return l ? (new Date(l.split(' ')[0]).getTime() - wall0) / 1000 : NaN;
    };
    // Times are docker logs -t's, stamped as each line was written (the server's own are whole seconds).
    const startedS = (new Date(info.State.StartedAt).getTime() - wall0) / 1000;
    const readyS = at(/ready for connections/, true);
    return {
      containerStartedS: round(startedS, 2),
      firstStart: /Unpacking the prepared data directory/.test(logs)
        ? 'prepared'
        : /Initializing database files/.test(logs)
          ? 'install-db'
          : 'unknown',
      readyS: round(readyS, 2),
      startToReadyS: round(readyS - startedS, 2),
    };
  } catch {
    return undefined;
  }
}

// --- the measurements -----------------------------------------------------------------------------

const results: Record<string, unknown> = {};
const goals: { goal: string; target: string; measured: string; met: boolean | null; note?: string }[] = [];
const goal = (g: string, target: string, measured: string, met: boolean | null, note?: string) =>
  goals.push({ goal: g, target, measured, met, ...(note ? { note } : {}) });

async function idleRss(label: string, settleMs = 15_000): Promise<number> {
  await sleep(settleMs);
  const samples: number[] = [];
  for (let i = 0; i < 20; i++) {
    samples.push(rssMiB(berth!.pid));
    await sleep(500);
  }
  const v = round(median(samples), 1);
  log(`${label}: RSS ${v} MiB`);
  return v;
}

async function single() {
  log(`1. one site, Berth vs script: ${opts.rounds} rounds each (plus one warm-up each), alternating`);
  const b: { siteId: string; jobId: string; postMs: number; httpMs: number; runningMs: number; db?: DbTimeline }[] = [];
  const s: number[] = [];
  const sDb: (DbTimeline | undefined)[] = [];
  // The machine's CPU a site, each side (machineCpuOf); on Berth's side the bench's polling of
  // the job (about 0.1 s) is in it.
  const cpu = { berth: [] as number[], script: [] as number[] };
  for (let r = 0; r <= opts.rounds; r++) {
    const order = r % 2 === 0 ? ['berth', 'script'] : ['script', 'berth'];
    for (const who of order) {
      await quiet(`one site, round ${r}, ${who}`);
      if (who === 'berth') {
        const t = await createTenant(`bench-one-${r}`);
        const [m, cpuS] = await machineCpuOf(() => berthOneSite(t));
        await retire([t]);
        if (r > 0) {
          b.push(m);
          cpu.berth.push(cpuS);
        }
        log(
          `  round ${r}${r === 0 ? ' (warm-up)' : ''}: Berth ${sec(m.httpMs)} s to HTTP, ${sec(m.runningMs)} s to SUCCEEDED (POST ${round(m.postMs)} ms)`,
        );
      } else {
        const { ms, db, cpuS } = await scriptOneSite();
        if (r > 0) {
          s.push(ms);
          sDb.push(db);
          cpu.script.push(cpuS);
        }
        log(`  round ${r}${r === 0 ? ' (warm-up)' : ''}: script ${sec(ms)} s`);
      }
    }
  }
  const out = {
    rounds: opts.rounds,
    berthToHttpS: b.map((m) => sec(m.httpMs)),
    berthToRunningS: b.map((m) => sec(m.runningMs)),
    berthPostMs: b.map((m) => round(m.postMs)),
    scriptS: s.map(sec),
    medianBerthToHttpS: sec(median(b.map((m) => m.httpMs))),
    medianBerthToRunningS: sec(median(b.map((m) => m.runningMs))),
    medianScriptS: sec(median(s)),
    ratio: round(median(b.map((m) => m.httpMs)) / median(s), 2),
    ratioRunning: round(median(b.map((m) => m.runningMs)) / median(s), 2),
    /** The whole machine's CPU seconds for one site (until 2 s after it is done), each round. */
    machineCpuS: cpu,
    medianMachineCpuS: { berth: round(median(cpu.berth), 2), script: round(median(cpu.script), 2) },
    jobs: await jobBreakdown(b.map((m) => m.siteId)),
    /** The steps of the last round's job: time and Engine API calls each. */
    stepCosts: await stepCosts(b.at(-1)!.jobId),
    /** The database server's own timeline (seconds after the request), Berth vs script, medians. */
    db: {
      berth: medianTimeline(b.map((m) => m.db)),
      script: medianTimeline(sDb),
      berthDetectionLagS: round(median(b.filter((m) => m.db).map((m) => m.runningMs / 1000 - m.db!.readyS)), 2),
    },
  };
  results.single = out;
  goal(
    'one site: Berth (POST → answers HTTP) ≤ 0.8 × script',
    '≤ 0.80',
    `${out.ratio} (${out.medianBerthToHttpS} s vs ${out.medianScriptS} s)`,
    out.ratio <= 0.8,
  );
  goal(
    'one site, like for like: Berth (POST → SUCCEEDED: database made and HTTP answering) ≤ 0.8 × script',
    '≤ 0.80',
    `${out.ratioRunning} (${out.medianBerthToRunningS} s vs ${out.medianScriptS} s)`,
    out.ratioRunning <= 0.8,
  );
  const ready = out.db.berth?.startToReadyS;
  if (ready !== undefined)
    goal(
      "a new tenant's database server: its container started → ready for connections, median",
      '≤ 0.5 s',
      `${ready} s (range ${out.db.berth?.startToReadyRangeS.join('-')}; data directory ${out.db.berth?.firstStart})`,
      ready <= 0.5,
    );
  return out;
}

/** Time and Docker Engine API calls of each step of one provisioning job (from its row). */
async function stepCosts(jobId: string) {
  const { rows } = await db.query<{
    steps: { name: string; startedAt: string; finishedAt?: string; engineCalls?: Record<string, number> }[];
  }>('SELECT steps FROM "Job" WHERE id = $1', [jobId]);
  return (rows[0]?.steps ?? []).map((s) => ({
    step: s.name,
    seconds: s.finishedAt ? sec(new Date(s.finishedAt).getTime() - new Date(s.startedAt).getTime()) : NaN,
    engineCalls: Object.values(s.engineCalls ?? {}).reduce((a, n) => a + n, 0),
    byEndpoint: s.engineCalls ?? {},
  }));
}

function medianTimeline(list: (DbTimeline | undefined)[]) {
  const l = list.filter((d): d is DbTimeline => d !== undefined && !Number.isNaN(d.readyS));
  if (!l.length) return undefined;
  return {
    containerStartedS: round(median(l.map((d) => d.containerStartedS)), 2),
    firstStart: [...new Set(l.map((d) => d.firstStart))].join(', '),
    readyS: round(median(l.map((d) => d.readyS)), 2),
    startToReadyS: round(median(l.map((d) => d.startToReadyS)), 2),
    startToReadyRangeS: [Math.min(...l.map((d) => d.startToReadyS)), Math.max(...l.map((d) => d.startToReadyS))],
  };
}

/**
 * 7. Density: N idle sites over T tenants (stand-in WordPress, real MariaDB servers), with
 * Berth running as in production (its probes every BERTH_PROBE_INTERVAL_MS, its reconciler;
 * the containers have no Docker health check): the whole machine's CPU over a window, against the same
 * window measured just before the sites existed.
 */
async function density() {
  const { densitySites: n, densityTenants: tn, densitySeconds: secs } = opts;
  log(`7. density: ${n} idle sites over ${tn} tenants, CPU over ${secs} s`);
  await quiet('density baseline');
  /** The whole machine's busy time over a window, and Berth's own, in % of one core (to a tenth). */
  const window = async (seconds: number) => {
    const m0 = machineCpu();
    const b0 = processCpuS(berth?.pid);
    const t = now();
    await sleep(seconds * 1000);
    const m1 = machineCpu();
    const s = (now() - t) / 1000;
    return { machine: round((100 * (m1.busy - m0.busy)) / s, 1), berth: round((100 * (processCpuS(berth?.pid) - b0)) / s, 1) };
  };
  const beforeW = await window(Math.min(60, secs));
  const before = beforeW.machine;
  const tenants: Tenant[] = [];
  for (let i = 0; i < tn; i++) tenants.push(await createTenant(`bench-dn-${i}`));
  const plan: { tenant: Tenant; name: string }[] = [];
  for (let k = 0; plan.length < n; k++) for (const t of tenants) if (plan.length < n) plan.push({ tenant: t, name: `idle-${k}` });
  const t0 = now();
  const posts = await Promise.all(plan.map((p) => api.must('POST', '/v1/sites', p.tenant.key, { name: p.name }, [202])));
  const { done, failed } = await untilSettled(
    posts.map((p) => p.body.site.id as string),
    t0,
    20 * 60_000,
    1000,
  );
  log(`  ${done.length} RUNNING, ${failed.length} failed, in ${sec(now() - t0)} s; settling 30 s`);
  // Every site has been probed by then, and the containers' first starts are over.
  await sleep(30_000);
  const usage = await sampler(1000);
  const windowFromS = (now() - berthStartedAt) / 1000;
  const with_ = (await window(secs)).machine;
  const during = (await usage.stop()).cpu;
  if (PROFILE)
    log(
      `  profile window: node bench/.out/cpu-profile-summary.js <profile> ${round(windowFromS)} ${round((now() - berthStartedAt) / 1000)}`,
    );
  const added = round(with_ - before, 1);
  // The same sites with Berth paused (SIGSTOP: no probe, no pass, no queue poll): what the
  // engine and the idle containers cost by themselves, the floor under any watcher.
  const pausedSecs = Math.max(30, Math.round(secs / 2));
  process.kill(berth!.pid, 'SIGSTOP');
  let paused: number;
  let whilePaused: CpuReport;
  try {
    const usagePaused = await sampler(1000);
    paused = (await window(pausedSecs)).machine;
    whilePaused = (await usagePaused.stop()).cpu;
  } finally {
    try {
      process.kill(berth!.pid, 'SIGCONT');
    } catch {
      // Berth died meanwhile: the phase's own error (or the next request's) says so.
    }
  }
  // `before` had Berth running without sites: the engine's and the containers' own cost is
  // the paused window's machine less the rest of `before` (without Berth's idle work), and
  // watching is what remains of what the sites added.
  const engineFloor = round(paused - (before - beforeW.berth), 1);
  const out = {
    sites: done.length,
    tenants: tn,
    seconds: secs,
    probeIntervalMs: Number(env.BERTH_PROBE_INTERVAL_MS ?? 5000),
    machinePctOfOneCoreBefore: before,
    machinePctOfOneCoreWithSites: with_,
    addedPctOfOneCore: added,
    addedPer100SitesPctOfOneCore: round((added * 100) / Math.max(1, done.length), 1),
    /** The machine with the sites and Berth paused, over pausedSeconds. */
    machinePctOfOneCoreBerthPaused: paused,
    pausedSeconds: pausedSecs,
    /** What the engine and the idle containers add by themselves (Berth paused). */
    engineFloorPctOfOneCore: engineFloor,
    /** Berth's own CPU in the window before the sites (its idle work, not counted as the engine's). */
    berthPctOfOneCoreBefore: beforeW.berth,
    /** What watching them adds (Berth's probes and passes, and the work they cause in the engine and containers). */
    watchingPctOfOneCore: round(added - engineFloor, 1),
    top: during.top,
    topBerthPaused: whilePaused.top,
  };
  results.density = out;
  log(
    `  machine ${out.machinePctOfOneCoreBefore}% of one core before, ${out.machinePctOfOneCoreWithSites}% with the sites: +${added}% (${out.addedPer100SitesPctOfOneCore}% per 100 sites); ${during.top
      .slice(0, 6)
      .map((t) => `${t.command} ${t.pctOfOneCore}%`)
      .join(', ')}`,
  );
  goal(
    `density: ${done.length} idle sites over ${tn} tenants, all they cost the machine (Berth, engine, containers)`,
    '≤ 5 % of one core',
    `+${added} % of one core (${out.machinePctOfOneCoreBefore} % before, ${out.machinePctOfOneCoreWithSites} % with them, over ${secs} s): the engine and idle containers alone (Berth paused, ${pausedSecs} s) +${engineFloor} %, watching them +${out.watchingPctOfOneCore} %`,
    added <= 5,
  );
  await retire(tenants);
  return out;
}

/** One level of the throughput phase (the fields the comparisons read). */
interface Level {
  sites: number;
  makespanS: number;
  p95ToRunningS: number;
  sitesPerMinute: number;
  failed: number;
  machineCpuPerSiteS: number;
  [more: string]: unknown;
}

async function throughput(singleRunningS: number | undefined, scriptS: number | undefined, single?: { berth: number; script: number }) {
  const levels: Level[] = [];
  let peakRss = 0;
  for (const n of opts.levels) {
    const tenantCount = n <= 16 ? n : 10;
    const per = Math.ceil(n / tenantCount);
    log(`2. throughput: ${n} site(s) at once across ${tenantCount} tenant(s)`);
    const tenants: Tenant[] = [];
    for (let i = 0; i < tenantCount; i++) tenants.push(await createTenant(`bench-tp${n}-${i}`));
    const plan: { tenant: Tenant; name: string }[] = [];
    for (let k = 0; k < per && plan.length < n; k++)
      for (const t of tenants) if (plan.length < n) plan.push({ tenant: t, name: `site-${k}` });
    await quiet(`throughput ${n}`);
    const usageOf = await sampler();
    const t0 = now();
    const posts = await Promise.all(plan.map((p) => api.must('POST', '/v1/sites', p.tenant.key, { name: p.name }, [202])));
    const postMs = posts.map((p) => p.ms);
    const { done, failed, urls } = await untilSettled(
      posts.map((p) => p.body.site.id as string),
      t0,
      20 * 60_000,
      200,
    );
    const makespan = Math.max(...done);
    const usage = await usageOf.stop();
    peakRss = Math.max(peakRss, usage.peakRssMiB);
    const answering = (await Promise.all(urls.map(answers))).filter(Boolean).length;
    const breakdown = await jobBreakdown(posts.map((p) => p.body.site.id));
    const level = {
      sites: n,
      tenants: tenantCount,
      running: done.length,
      failed: failed.length,
      answering,
      makespanS: sec(makespan),
      sitesPerMinute: round((done.length / makespan) * 60_000, 1),
      p50ToRunningS: sec(percentile(done, 50)),
      p95ToRunningS: sec(percentile(done, 95)),
      postP50Ms: round(median(postMs)),
      postMaxMs: round(Math.max(...postMs)),
      peakRssMiB: usage.peakRssMiB,
      cpu: usage.cpu,
      /** The whole machine's CPU seconds over the phase, per site made. */
      machineCpuPerSiteS: round(((usage.cpu.machineBusyPct / 100) * usage.cpu.wallSeconds * cpus().length) / Math.max(1, done.length), 2),
      jobs: breakdown,
    };
    levels.push(level);
    log(
      `  ${done.length}/${n} RUNNING in ${level.makespanS} s (${level.sitesPerMinute}/min), p50 ${level.p50ToRunningS} s, p95 ${level.p95ToRunningS} s, ${answering} answering, peak RSS ${usage.peakRssMiB} MiB, machine ${usage.cpu.machineBusyPct}% busy (other work ${usage.cpu.otherWorkPct}% of a core)`,
    );
    await retire(tenants);
    await sleep(3000);
  }
  results.throughput = levels;
  const at16 = levels.find((l) => l.sites === 16) as Level | undefined;
  const cores = cpus().length;
  if (at16 && scriptS) {
    const serial = 16 * scriptS;
    const speedup = round(serial / at16.makespanS, 2);
    // No order of the work beats the machine: 16 sites need 16 × (the machine's CPU a site) /
    // cores seconds. At what a site cost one at a time (the least Berth has needed, measured
    // apart from this phase) that bounds the speed-up over the serial script. It holds at
    // today's CPU a site only: doing less a site (or doing it ahead of time) raises it.
    const ceiling = single ? round((cores * scriptS) / single.berth, 2) : undefined;
    results.throughputVsScript = {
      serialScriptS: round(serial, 1),
      berthMakespanS: at16.makespanS,
      speedup,
      cores,
      machineCpuPerSiteS: { scriptAlone: single?.script, berthAlone: single?.berth, berthAt16: at16.machineCpuPerSiteS },
      ceilingAtBerthAloneCpu: ceiling,
    };
    goal(
      '16 at once: ≥ 3 × the serial script',
      '≥ 3.0×',
      `${speedup}× (${at16.makespanS} s vs 16 × ${scriptS} s = ${round(serial, 1)} s); at the machine's CPU a site one at a time (Berth ${single?.berth ?? '-'} s, the script ${single?.script ?? '-'} s; ${at16.machineCpuPerSiteS} s a site at 16) the most ${cores} cores allow is ${ceiling ?? '-'}×`,
      speedup >= 3,
    );
  }
  if (at16 && singleRunningS) {
    const ratio = round(at16.p95ToRunningS / singleRunningS, 2);
    // The p95 of 16 (interpolated, as percentile() does) is 15.25 sites into the order they
    // end in; none of those ends before that many sites' CPU has been spent on the cores.
    const rank = 0.95 * (16 - 1) + 1;
    const floor = single ? round((rank * single.berth) / cores, 1) : undefined;
    goal(
      '16 at once: p95 ≤ 3 × single-site time',
      '≤ 3.0×',
      `${ratio}× (p95 ${at16.p95ToRunningS} s vs ${singleRunningS} s)${floor === undefined ? '' : `; at the CPU a site one at a time the p95 cannot come before ${floor} s = ${round(floor / singleRunningS, 1)}×`}`,
      ratio <= 3,
    );
  }
  return peakRss;
}

/**
 * A steady rate of `rate` requests per second for `seconds`, spread evenly over time.
 * autocannon's own overallRate sends each second's quota as one burst at the top of the
 * second (every connection at once), which measures how fast a burst drains rather than
 * latency at a rate. So here `connections` autocannon instances of one connection each run
 * at rate/connections per second, started 1000/connections ms apart; every response's
 * latency is recorded (exact percentiles, any status).
 */
async function paced(
  title: string,
  o: Omit<autocannon.Options, 'connections' | 'overallRate' | 'duration'>,
  rate: number,
  seconds: number,
  connections = opts.apiConnections,
  /** Berth's route label, to read how long Berth itself took (its request histogram). */
  route?: string,
) {
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const runs: PromiseLike<autocannon.Result>[] = [];
  if (!title.startsWith('warm-up')) await quiet(title);
  const usageOf = title.startsWith('warm-up') ? undefined : await sampler();
  const servedBefore = route ? await served(route) : undefined;
  // autocannon sends ceil(connectionRate) requests a second per connection: keep the rate exact
  const perConnection = Math.max(1, Math.round(rate / connections));
  connections = Math.round(rate / perConnection);
  for (let i = 0; i < connections; i++) {
    const instance = autocannon({ ...o, connections: 1, connectionRate: perConnection, duration: seconds, timeout: 10 });
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      latencies.push(ms);
      statusCodes[status] = (statusCodes[status] ?? 0) + 1;
    });
    runs.push(instance);
    await sleep(1000 / connections);
  }
  const rs = await Promise.all(runs);
  const usage = await usageOf?.stop();
  const berthSide = servedBefore ? withinBerth(servedBefore, await served(route!)) : undefined;
  const sum = (f: (r: autocannon.Result) => number) => rs.reduce((a, r) => a + f(r), 0);
  const out = {
    title,
    targetRate: perConnection * connections,
    seconds,
    connections,
    requests: latencies.length,
    achievedRate: round(latencies.length / seconds),
    p50Ms: round(percentile(latencies, 50), 1),
    p90Ms: round(percentile(latencies, 90), 1),
    p99Ms: round(percentile(latencies, 99), 1),
    maxMs: round(Math.max(...latencies), 1),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    mismatches: sum((r) => r.mismatches),
    statusCodes,
    ...(berthSide ? { berthSide } : {}),
    ...(usage ? { peakRssMiB: usage.peakRssMiB, berthCpuMsPerRequest: berthCpuMsPer(usage.cpu, latencies.length), cpu: usage.cpu } : {}),
  };
  const top = usage
    ? `; CPU: machine ${usage.cpu.machineBusyPct}%, other work ${usage.cpu.otherWorkPct}% of a core, ${usage.cpu.top
        .slice(0, 4)
        .map((t) => `${t.command} ${t.pctOfOneCore}%`)
        .join(', ')}`
    : '';
  const inBerth = berthSide ? `; Berth's own timing: ${berthSide.within10ms}% within 10 ms, ${berthSide.within25ms}% within 25 ms` : '';
  log(
    `  ${title}: ${out.achievedRate} req/s, p50 ${out.p50Ms} ms, p99 ${out.p99Ms} ms, max ${out.maxMs} ms, errors ${out.errors}, non-2xx ${out.non2xx}, bad bodies ${out.mismatches}${inBerth}${top}`,
  );
  return out;
}

/**
 * Berth's own request histogram for one route (cumulative counts by upper bound, seconds):
 * the time from Express receiving a request to the response's end, without the load
 * generator's side (which shares this machine's cores and has pauses of its own).
 */
async function served(route: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${berth!.url}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^berth_http_request_duration_seconds_bucket\{([^}]*)\} (\d+)/gm)) {
    if (!m[1].includes(`route="${route}"`) || !m[1].includes('status="200"')) continue;
    const le = /le="([^"]+)"/.exec(m[1])?.[1] ?? '';
    counts.set(le, (counts.get(le) ?? 0) + Number(m[2]));
  }
  return counts;
}

/** The share of a phase's requests Berth answered within 10 and 25 ms (histogram bounds), in %. */
function withinBerth(before: Map<string, number>, after: Map<string, number>) {
  const delta = (le: string) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const all = Math.max(1, delta('+Inf'));
  return { requests: delta('+Inf'), within10ms: round((100 * delta('0.01')) / all, 2), within25ms: round((100 * delta('0.025')) / all, 2) };
}

const berthCpuMsPer = (cpu: CpuReport, requests: number) =>
  round((1000 * (cpu.top.find((t) => t.command === 'berth')?.cpuSeconds ?? 0)) / Math.max(1, requests), 2);

/** autocannon's own fixed-rate mode (-R), for reference: each second's requests leave as one burst. */
async function bursty(title: string, o: autocannon.Options) {
  await quiet(title);
  const r = await autocannon({ connections: 32, timeout: 10, ...o });
  const out = {
    title,
    targetRate: o.overallRate,
    achievedRate: round(r.requests.total / r.duration),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    errors: r.errors,
    non2xx: r.non2xx,
  };
  log(`  ${title}: ${out.achievedRate} req/s, p50 ${out.p50Ms} ms, p99 ${out.p99Ms} ms (autocannon -R, bursts)`);
  return out;
}

/** Waits until Berth's reconciler has ended a pass (its duration histogram counts one). */
async function reconcilePassEnded(timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await (await fetch(`${berth!.url}/metrics`)).text();
    const ended = [...text.matchAll(/^berth_reconcile_pass_duration_seconds_count\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    if (ended > 0) return;
    if (Date.now() > deadline) throw new Error('the reconciler did not end a pass in time');
    await sleep(500);
  }
}

async function apiLoad() {
  const tenants = Math.ceil(opts.apiSites / 10);
  log(`3. API under load: ${opts.apiSites} site rows (${tenants} tenants, no containers), ${opts.apiRate} req/s for ${opts.apiSeconds} s`);
  // The rows are made up (no Docker objects, no sealed passwords): a reconciler pass would
  // queue a repair for each of them, and one key sending 500 req/s is over the default rate
  // limit. So this Berth reconciles once an hour and allows the bench's key 10 M requests a
  // minute; it still pays for the rate limiter's Redis round trip on every request.
  await berth!.stop();
  await db.query(
    `INSERT INTO "Tenant" (id, slug, name, "contactEmail", "networkIndex", "dbRootPasswordEnc", "updatedAt")
     SELECT gen_random_uuid(), 'bench-load-' || g, 'Load ' || g, 'ops@load' || g || '.example', 100000 + g, 'v1.unused', now()
     FROM generate_series(1, $1::int) g`,
    [tenants],
  );
  const { rows } = await db.query<{ id: string }>(
    `WITH n AS (
       SELECT gen_random_uuid() AS id, t.id AS tid, s FROM "Tenant" t, generate_series(1, 10) s
       WHERE t.slug LIKE 'bench-load-%')
     INSERT INTO "Site" (id, "tenantId", name, "liveName", status, "desiredState", "dbName", "dbUser", "dbPasswordEnc", "updatedAt")
     SELECT id, tid, 'site-' || s, 'site-' || s, 'STOPPED', 'STOPPED',
            'wp_' || substr(replace(id::text, '-', ''), 1, 16), 'wp_' || substr(replace(id::text, '-', ''), 1, 16), 'v1.unused', now()
     FROM n LIMIT $1::int RETURNING id`,
    [opts.apiSites],
  );
  // The rows exist before Berth starts, so that its first reconciler pass (a second after the
  // start) covers all of them, and the measurement waits for that pass to end: until
  // 2026-12-05 the rows were made after the start and the pass, which records a problem for
  // each made-up site (its tenant's network index is outside the pool), ran through the
  // measured phases, taking much of a core for about 45 s.
  await start({ BERTH_RECONCILE_INTERVAL_MS: '3600000', BERTH_RATE_LIMIT_PER_MINUTE: '10000000' });
  const passed = Date.now();
  await reconcilePassEnded();
  log(`  the reconciler's first pass over the rows ended ${round((Date.now() - passed) / 1000)} s after the start`);
  const ids = rows.map((r) => r.id);
  const pick = () => ids[Math.floor(Math.random() * ids.length)];
  const sample = await api.must('GET', `/v1/sites/${ids[0]}`, ADMIN_KEY);
  // As a client sends it: one document, the id a variable (Apollo parses and validates a
  // document once). The id written into the document, a new document for every site, is
  // measured too, as a secondary row.
  const gqlQuery = (id: string) =>
    JSON.stringify({ query: 'query Site($id: ID!) { site(id: $id) { id name status } }', variables: { id } });
  const gqlInline = (id: string) => JSON.stringify({ query: `query { site(id: "${id}") { id name status } }` });
  const gql = await api.must('POST', '/graphql', ADMIN_KEY, JSON.parse(gqlQuery(ids[0])));
  if (!gql.body?.data?.site) throw new Error(`GraphQL site query failed: ${JSON.stringify(gql.body)}`);
  log(
    `  sample: REST ${sample.status} (containers: ${sample.body.containers.map((c: { state: string }) => c.state).join(', ')}), GraphQL ${JSON.stringify(gql.body).slice(0, 120)}`,
  );

  const headers = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
  const restOpts = (): autocannon.Options => ({
    url: berth!.url,
    headers,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/v1/sites/${pick()}` }) }],
  });
  const gqlOpts = (body = gqlQuery): autocannon.Options => ({
    url: berth!.url,
    headers,
    requests: [{ method: 'POST', path: '/graphql', setupRequest: (req) => ({ ...req, path: '/graphql', body: body(pick()) }) }],
    verifyBody: (body) => body.includes('"site":{') && !body.includes('"errors"'),
  });
  // warm-up (JIT, connection pools), not recorded
  await paced('warm-up REST', restOpts(), 100, 3, 10);
  await paced('warm-up GraphQL', gqlOpts(), 100, 3, 10);

  const healthzReference = await paced(
    'GET /healthz (reference)',
    { url: `${berth!.url}/healthz` },
    opts.apiRate,
    Math.min(10, opts.apiSeconds),
  );
  const rest = await paced('GET /v1/sites/{id}', restOpts(), opts.apiRate, opts.apiSeconds, undefined, '/v1/sites/:id');
  const graphql = await paced('GraphQL site(id)', gqlOpts(), opts.apiRate, opts.apiSeconds, undefined, '/graphql');
  const restLow = opts.apiRateLow
    ? await paced('GET /v1/sites/{id}', restOpts(), opts.apiRateLow, Math.min(10, opts.apiSeconds), undefined, '/v1/sites/:id')
    : undefined;
  const graphqlLow = opts.apiRateLow
    ? await paced('GraphQL site(id)', gqlOpts(), opts.apiRateLow, Math.min(10, opts.apiSeconds), undefined, '/graphql')
    : undefined;
  const graphqlInline = await paced(
    'GraphQL site(id), the id in the document',
    gqlOpts(gqlInline),
    opts.apiRate,
    Math.min(10, opts.apiSeconds),
    undefined,
    '/graphql',
  );
  await sleep(2000);
  const restBursty = await bursty('GET /v1/sites/{id}, autocannon -R', { ...restOpts(), overallRate: opts.apiRate, duration: 10 });
  const out = { siteRows: ids.length, healthzReference, rest, graphql, restLow, graphqlLow, graphqlInline, restBursty };
  results.api = out;
  const clean = (r: typeof out.rest) => r.errors === 0 && r.non2xx === 0 && r.mismatches === 0 && r.timeouts === 0;
  goal(
    `REST GET /v1/sites/{id} p99 < 25 ms at ${opts.apiRate} req/s, no errors`,
    '< 25 ms',
    `${out.rest.p99Ms} ms (${out.rest.achievedRate} req/s, errors ${out.rest.errors}, non-2xx ${out.rest.non2xx})`,
    out.rest.p99Ms < 25 && clean(out.rest) && out.rest.achievedRate >= opts.apiRate * 0.95,
  );
  goal(
    `GraphQL site(id) p99 < 25 ms at ${opts.apiRate} req/s, no errors`,
    '< 25 ms',
    `${out.graphql.p99Ms} ms (${out.graphql.achievedRate} req/s, errors ${out.graphql.errors}, non-2xx ${out.graphql.non2xx}, bad bodies ${out.graphql.mismatches})`,
    out.graphql.p99Ms < 25 && clean(out.graphql) && out.graphql.achievedRate >= opts.apiRate * 0.95,
  );
  await sleep(3000); // let the last in-flight requests finish before the rows go
  for (const table of ['Event', 'Job', 'Site']) {
    await db.query(`DELETE FROM "${table}" WHERE "tenantId" IN (SELECT id FROM "Tenant" WHERE slug LIKE 'bench-load-%')`);
  }
  await db.query(`DELETE FROM "Tenant" WHERE slug LIKE 'bench-load-%'`);
  return out;
}

async function listLatency(label: string) {
  return paced(
    `GET /v1/sites?limit=200 with ${label}`,
    { url: `${berth!.url}/v1/sites?limit=200`, headers: { authorization: `Bearer ${ADMIN_KEY}` } },
    20,
    10,
    10,
  );
}

async function provisionBurst(plan: { tenant: Tenant; name: string }[], timeoutMs: number) {
  const t0 = now();
  const posts = await Promise.all(plan.map((p) => api.must('POST', '/v1/sites', p.tenant.key, { name: p.name }, [202])));
  const siteIds = posts.map((p) => p.body.site.id as string);
  const { done, failed, urls } = await untilSettled(siteIds, t0, timeoutMs, 500);
  return { siteIds, done, failed, urls, makespanMs: Math.max(...done) };
}

/**
 * Polls the site list until every one of `siteIds` is RUNNING or FAILED: the ms from t0 at
 * which each reached RUNNING, the ids that FAILED, and the URLs of the running ones.
 */
async function untilSettled(siteIds: string[], t0: number, timeoutMs: number, everyMs: number) {
  const pending = new Set(siteIds);
  const done: number[] = [];
  const failed: string[] = [];
  const urls: string[] = [];
  while (pending.size) {
    if (now() - t0 > timeoutMs) throw new Error(`${pending.size} site(s) still not RUNNING after ${timeoutMs / 60_000} min`);
    for (const s of await listAllSites()) {
      if (!pending.has(s.id)) continue;
      if (s.status === 'RUNNING') {
        done.push(now() - t0);
        urls.push(s.url as string);
        pending.delete(s.id);
      } else if (s.status === 'FAILED') {
        failed.push(s.id);
        pending.delete(s.id);
      }
    }
    if (pending.size) await sleep(everyMs);
  }
  return { done, failed, urls };
}

async function scale() {
  log(`4. scale: ${opts.scaleSites} sites across ${opts.scaleTenants} tenants`);
  const tenants: Tenant[] = [];
  for (let i = 0; i < opts.scaleTenants; i++) tenants.push(await createTenant(`bench-sc-${i}`));
  const per = Math.ceil(opts.scaleSites / opts.scaleTenants);
  const first = tenants.slice(0, 10).map((t) => ({ tenant: t, name: 'site-0' }));
  const rest: { tenant: Tenant; name: string }[] = [];
  for (let k = 0; k < per; k++)
    for (const t of tenants) if (!(k === 0 && tenants.indexOf(t) < 10)) rest.push({ tenant: t, name: `site-${k}` });
  rest.splice(opts.scaleSites - first.length);
  await quiet('scale, first 10 sites');
  const firstRun = await provisionBurst(first, 10 * 60_000);
  const with10 = await listLatency(`${firstRun.done.length} sites`);
  await quiet(`scale, burst of ${rest.length}`);
  const usageOf = await sampler(500);
  const burst = await provisionBurst(rest, 60 * 60_000);
  const usage = await usageOf.stop();
  const all = await listAllSites();
  const answering = (await Promise.all(all.map((s) => (s.url ? answers(s.url) : Promise.resolve(false))))).filter(Boolean).length;
  const withAll = await listLatency(`${all.length} sites`);
  const out = {
    sites: all.length,
    tenants: tenants.length,
    burst: {
      sites: rest.length,
      running: burst.done.length,
      failed: burst.failed.length,
      makespanS: sec(burst.makespanMs),
      sitesPerMinute: round((burst.done.length / burst.makespanMs) * 60_000, 1),
      p50ToRunningS: sec(percentile(burst.done, 50)),
      p95ToRunningS: sec(percentile(burst.done, 95)),
      jobs: await jobBreakdown(burst.siteIds),
    },
    answering,
    listWith10: with10,
    listWithAll: withAll,
    peakRssMiB: usage.peakRssMiB,
    cpu: usage.cpu,
  };
  log(
    `  ${out.sites} sites live, ${answering} answering; list p50 ${with10.p50Ms} → ${withAll.p50Ms} ms, p99 ${with10.p99Ms} → ${withAll.p99Ms} ms`,
  );
  results.scale = out;
  goal(
    `scale: ${opts.scaleSites} sites provisioned and answering`,
    `${opts.scaleSites}/${opts.scaleSites}`,
    `${answering}/${opts.scaleSites} answering, ${out.burst.failed} failed`,
    answering === opts.scaleSites && out.burst.failed === 0,
  );
  await retire(tenants);
  return out;
}

async function real() {
  log(
    `6. real images: Berth restarted with BERTH_WORDPRESS_IMAGE=${REAL_IMAGE}; ${opts.realRounds} tenant(s) × 2 sites, then the script once`,
  );
  await berth!.stop();
  await start({ BERTH_WORDPRESS_IMAGE: REAL_IMAGE });
  const first: { httpMs: number; runningMs: number }[] = [];
  const second: { httpMs: number; runningMs: number }[] = [];
  for (let r = 0; r < opts.realRounds; r++) {
    const t = await createTenant(`bench-real-${r}`);
    await quiet(`real images, round ${r}, first site`);
    const a = await berthOneSite(t, 'blog');
    await quiet(`real images, round ${r}, second site`);
    const b = await berthOneSite(t, 'shop');
    first.push(a);
    second.push(b);
    log(
      `  tenant ${r}: first site ${sec(a.runningMs)} s to SUCCEEDED (${sec(a.httpMs)} s to HTTP), second ${sec(b.runningMs)} s (${sec(b.httpMs)} s)`,
    );
    await retire([t]);
  }
  await quiet('real images, script');
  const { ms: scriptMs } = await scriptOneSite(REAL_IMAGE);
  log(`  script with real images: ${sec(scriptMs)} s`);
  const out = {
    image: REAL_IMAGE,
    firstSiteToRunningS: first.map((m) => sec(m.runningMs)),
    firstSiteToHttpS: first.map((m) => sec(m.httpMs)),
    secondSiteToRunningS: second.map((m) => sec(m.runningMs)),
    secondSiteToHttpS: second.map((m) => sec(m.httpMs)),
    medianFirstS: sec(median(first.map((m) => m.runningMs))),
    medianSecondS: sec(median(second.map((m) => m.runningMs))),
    scriptS: sec(scriptMs),
  };
  results.real = out;
  goal('real images: first site of a tenant ≤ 20 s', '≤ 20 s', `${out.medianFirstS} s`, out.medianFirstS <= 20);
  goal('real images: second site of a tenant ≤ 8 s', '≤ 8 s', `${out.medianSecondS} s`, out.medianSecondS <= 8);
  return out;
}

// --- report ------------------------------------------------------------------------------------------

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

function report(): string {
  const out: string[] = [];
  const m = results.machine as Awaited<ReturnType<typeof machineInfo>>;
  out.push(`Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}, Docker Engine ${m.dockerEngine}, Node ${m.node}`);
  const s = results.single as Awaited<ReturnType<typeof single>> | undefined;
  if (s) {
    out.push('', `One site, median of ${s.rounds} (seconds)`);
    out.push(
      table([
        ['', 'median', 'runs'],
        ['Berth: POST → site answers HTTP', String(s.medianBerthToHttpS), s.berthToHttpS.join(' ')],
        ['Berth: POST → job SUCCEEDED', String(s.medianBerthToRunningS), s.berthToRunningS.join(' ')],
        ['script (docker CLI)', String(s.medianScriptS), s.scriptS.join(' ')],
        ['machine CPU s a site, Berth (all processes, until 2 s after)', String(s.medianMachineCpuS.berth), s.machineCpuS.berth.join(' ')],
        ['machine CPU s a site, script', String(s.medianMachineCpuS.script), s.machineCpuS.script.join(' ')],
      ]),
    );
    out.push('', 'One provisioning, step by step (the last round): time and Docker Engine API calls');
    out.push(
      table([
        ['step', 's', 'engine calls', 'by endpoint'],
        ...s.stepCosts.map((c) => [
          c.step,
          String(c.seconds),
          String(c.engineCalls),
          Object.entries(c.byEndpoint)
            .map(([e, n]) => `${e} ×${n}`)
            .join(', '),
        ]),
      ]),
    );
    const d = s.db;
    if (d.berth && d.script) {
      out.push(
        `Database server, from its own log (medians, s after the request): container started ${d.berth.containerStartedS} (Berth) vs ${d.script.containerStartedS} (script); data directory ${d.berth.firstStart} vs ${d.script.firstStart}; ready ${d.berth.readyS} vs ${d.script.readyS}, that is ${d.berth.startToReadyS} s after its container started (range ${d.berth.startToReadyRangeS.join('-')}) vs ${d.script.startToReadyS} s; Berth saw it ${d.berthDetectionLagS} s after it was ready (job done)`,
      );
    }
  }
  const tp = results.throughput as
    | {
        sites: number;
        tenants: number;
        running: number;
        failed: number;
        answering: number;
        makespanS: number;
        sitesPerMinute: number;
        p50ToRunningS: number;
        p95ToRunningS: number;
        peakRssMiB: number;
        cpu: CpuReport;
        jobs: { queueWaitS: { p50: number }; stepsS: Record<string, { p50: number }> };
      }[]
    | undefined;
  if (tp) {
    out.push('', 'Throughput: sites requested at once');
    out.push(
      table([
        [
          'sites',
          'tenants',
          'RUNNING',
          'failed',
          'all done (s)',
          'sites/min',
          'p50 (s)',
          'p95 (s)',
          'queue wait p50 (s)',
          'db wait p50 (s)',
          'peak RSS (MiB)',
          'machine busy',
          'other work',
        ],
        ...tp.map((l) =>
          [
            l.sites,
            l.tenants,
            l.running,
            l.failed,
            l.makespanS,
            l.sitesPerMinute,
            l.p50ToRunningS,
            l.p95ToRunningS,
            l.jobs.queueWaitS.p50,
            l.jobs.stepsS['wait for database server']?.p50 ?? '-',
            l.peakRssMiB,
            `${l.cpu.machineBusyPct}%`,
            `${l.cpu.otherWorkPct}%`,
          ].map(String),
        ),
      ]),
    );
  }
  const a = results.api as Awaited<ReturnType<typeof apiLoad>> | undefined;
  if (a) {
    out.push('', `API under load (${a.siteRows} sites in the database)`);
    out.push(
      table([
        [
          'endpoint',
          'target req/s',
          'achieved',
          'p50 ms',
          'p99 ms',
          'max ms',
          'errors',
          'non-2xx',
          'bad bodies',
          'Berth CPU',
          'Berth CPU ms/req',
          'other work',
          'Berth answered within 25 ms',
        ],
        ...[a.healthzReference, a.rest, a.graphql, a.restLow, a.graphqlLow, a.graphqlInline]
          .filter((r) => r !== undefined)
          .map((r) =>
            [
              r.title,
              r.targetRate,
              r.achievedRate,
              r.p50Ms,
              r.p99Ms,
              r.maxMs,
              r.errors,
              r.non2xx,
              r.mismatches,
              `${r.cpu?.top.find((t) => t.command === 'berth')?.pctOfOneCore ?? '-'}%`,
              r.berthCpuMsPerRequest ?? '-',
              `${r.cpu?.otherWorkPct ?? '-'}%`,
              'berthSide' in r && r.berthSide ? `${r.berthSide.within25ms}%` : '-',
            ].map(String),
          ),
      ]),
    );
    out.push(
      `(requests spread evenly over each second by ${a.rest.connections} staggered connections; autocannon's own -R mode, which sends each second's ${a.restBursty.targetRate} requests as one burst, gives p50 ${a.restBursty.p50Ms} ms, p99 ${a.restBursty.p99Ms} ms for GET /v1/sites/{id})`,
    );
  }
  const sc = results.scale as Awaited<ReturnType<typeof scale>> | undefined;
  if (sc) {
    out.push('', `Scale: ${sc.sites} sites across ${sc.tenants} tenants, ${sc.answering} answering`);
    out.push(
      table([
        ['', 'value'],
        ['burst of ' + sc.burst.sites + ' sites: all RUNNING (s)', String(sc.burst.makespanS)],
        ['sites/min', String(sc.burst.sitesPerMinute)],
        ['p50 / p95 to RUNNING (s)', `${sc.burst.p50ToRunningS} / ${sc.burst.p95ToRunningS}`],
        ['GET /v1/sites?limit=200 p50/p99 with 10 sites (ms)', `${sc.listWith10.p50Ms} / ${sc.listWith10.p99Ms}`],
        [`GET /v1/sites?limit=200 p50/p99 with ${sc.sites} sites (ms)`, `${sc.listWithAll.p50Ms} / ${sc.listWithAll.p99Ms}`],
        ['peak RSS (MiB)', String(sc.peakRssMiB)],
      ]),
    );
  } else {
    out.push('', 'Scale: skipped (BENCH_SCALE=1 npm run bench runs 300 sites across 100 tenants; allow 20+ minutes and ~12 GiB)');
  }
  const f = results.footprint as
    | {
        idleRssMiB: number;
        idleAfterWorkRssMiB?: number;
        peakRssMiB?: number;
        byModule?: { step: string; rssMiB: number; addedMiB: number }[];
      }
    | undefined;
  if (f) {
    out.push(
      '',
      `Footprint (Berth RSS): idle ${f.idleRssMiB} MiB at start, ${f.idleAfterWorkRssMiB ?? '-'} MiB idle after the throughput runs, peak ${f.peakRssMiB ?? '-'} MiB during them`,
    );
    if (f.byModule)
      out.push(
        `  RSS of a bare process loading Berth's dependencies in turn: ${f.byModule.map((m) => `${m.step} ${m.addedMiB >= 0 ? '+' : ''}${m.addedMiB}`).join(', ')} = ${f.byModule.at(-1)?.rssMiB} MiB`,
      );
  }
  const r = results.real as Awaited<ReturnType<typeof real>> | undefined;
  if (r) {
    out.push('', `Real images (${r.image}), seconds`);
    out.push(
      table([
        ['', 'median', 'runs'],
        ['first site of a new tenant: POST → SUCCEEDED', String(r.medianFirstS), r.firstSiteToRunningS.join(' ')],
        ['second site of the tenant: POST → SUCCEEDED', String(r.medianSecondS), r.secondSiteToRunningS.join(' ')],
        ['script (docker CLI), one run', String(r.scriptS), ''],
      ]),
    );
  } else if (wanted('real')) {
    out.push('', `Real images: skipped (${REAL_IMAGE} not present; scripts/images.sh wordpress builds it)`);
  }
  if (background.length) {
    const worst = background.reduce((a, b) => (b.busyPct > a.busyPct ? b : a));
    const waited = background.reduce((a, b) => a + b.waitedS, 0);
    out.push(
      '',
      `Other work on the machine before each measurement: median ${median(background.map((b) => b.busyPct))}% CPU, worst ${worst.busyPct}% (before "${worst.before}"), up to ${Math.max(...background.map((b) => b.foreignContainers))} other containers running; ${round(waited)} s spent waiting for quiet`,
    );
  }
  out.push('', 'Goals');
  out.push(
    table([
      ['goal', 'target', 'measured', 'met'],
      ...goals.map((g) => [g.goal, g.target, g.measured, g.met === null ? '-' : g.met ? 'yes' : 'NO']),
    ]),
  );
  return out.join('\n');
}

// --- main -----------------------------------------------------------------------------------------

async function cleanupDocker(): Promise<void> {
  await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
  await removeLabelled(docker, [SCRIPT_LABEL]);
}

async function main(): Promise<void> {
  const started = now();
  mkdirSync(OUT, { recursive: true });
  mkdirSync(RESULTS, { recursive: true });
  results.startedAt = new Date().toISOString();
  results.machine = await machineInfo(docker);
  results.settings = {
    profiled: PROFILE,
    nodeArgs: NODE_ARGS,
    ...opts,
    only: opts.only ? [...opts.only] : 'all',
    instance: INSTANCE,
    database: 'berth_bench',
    redisDb: REDIS_DB,
    subnetPool: '10.90.0.0/16',
    scriptSubnets: '10.91.N.0/24',
    portRange: '30000-31999',
    wordpressImage: STUB_IMAGE,
    dbImage: DB_IMAGE,
    workerConcurrency: 16,
  };

  // A fresh database and Redis database, and no Docker objects left from an earlier run.
  await emptyDatabase(adminDbUrl, 'berth_bench');
  await redis.flushdb();
  await assertRedisDbFree();
  await cleanupDocker();

  await start();
  const footprint: Record<string, unknown> = { idleRssMiB: await idleRss('5. idle footprint at start') };
  results.footprint = footprint;
  footprint.byModule = JSON.parse(
    await run(process.execPath, ['--expose-gc', join(OUT, 'rss-by-module.js')], { ...env, DATABASE_URL: benchDbUrl }),
  );

  const s = wanted('single') ? await single() : undefined;
  if (wanted('throughput')) {
    footprint.peakRssMiB = await throughput(s?.medianBerthToRunningS, s?.medianScriptS, s?.medianMachineCpuS);
    footprint.idleAfterWorkRssMiB = await idleRss('5. idle footprint after the throughput runs', 15_000);
  }
  const idle = footprint.idleRssMiB as number;
  const idleAfter = footprint.idleAfterWorkRssMiB as number | undefined;
  goal(
    'idle RSS < 250 MiB',
    '< 250 MiB',
    `${idle} MiB at start${idleAfter ? `, ${idleAfter} MiB after work` : ''}`,
    idle < 250 && (idleAfter ?? 0) < 250,
  );
  if (wanted('density')) await density();
  if (wanted('api')) await apiLoad();
  if (opts.scale && wanted('scale')) await scale();
  else log('4. scale: skipped (run it with BENCH_SCALE=1 npm run bench: 300 sites across 100 tenants)');
  if (wanted('real')) {
    const hasReal = await docker
      .getImage(REAL_IMAGE)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    if (hasReal) await real();
    else log(`6. real images: skipped (${REAL_IMAGE} not present)`);
  }

  results.goals = goals;
  results.background = background;
  results.totalSeconds = sec(now() - started);
  const text = report();
  process.stdout.write(`\n${text}\n\nTotal bench time: ${results.totalSeconds} s\n`);
  const stamp = (results.startedAt as string).replace(/[:.]/g, '-');
  const json = `${JSON.stringify(results, null, 2)}\n`;
  writeFileSync(join(RESULTS, `${stamp}.json`), json);
  writeFileSync(join(RESULTS, 'latest.json'), json);
  log(`results: bench/results/${stamp}.json and bench/results/latest.json`);
}

let finishing = false;
async function finish(code: number): Promise<never> {
  if (!finishing) {
    finishing = true;
    await berth?.stop().catch(() => undefined);
    if (PROFILE) {
      for (const f of (existsSync(join(OUT, 'profile')) ? readdirSync(join(OUT, 'profile')) : []).filter((n) =>
        n.endsWith('.cpuprofile'),
      )) {
        log(
          `CPU profile bench/.out/profile/${f}:\n${await run(process.execPath, [join(OUT, 'cpu-profile-summary.js'), join(OUT, 'profile', f)]).catch((e: Error) => e.message)}`,
        );
      }
    }
    await db.end().catch(() => undefined);
    redis.disconnect();
    await cleanupDocker().catch((e: Error) => log(`clean-up: ${e.message}`));
  }
  process.exit(code);
}
process.on('SIGINT', () => void finish(130));
process.on('SIGTERM', () => void finish(143));

main().then(
  () => finish(0),
  (e: Error) => {
    log(`FAILED: ${e.stack ?? e.message}`);
    try {
      const stamp = String(results.startedAt ?? new Date().toISOString()).replace(/[:.]/g, '-');
      writeFileSync(
        join(RESULTS, `${stamp}-failed.json`),
        `${JSON.stringify({ ...results, goals, background, error: e.message }, null, 2)}\n`,
      );
      log(`partial results: bench/results/${stamp}-failed.json`);
    } catch {
      // nothing to add
    }
    if (berth) log(`Berth's output: bench/.out/berth-${berthRuns}.log`);
    return finish(1);
  },
);
