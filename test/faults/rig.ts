import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { auth, exec, spawnBerth, startHarness, waitForOutput, type BerthProcess, type Harness } from '../harness';
import { testEnv } from '../env';
import { eventually } from '../receivers';

const root = join(__dirname, '..', '..');

/** Settings that make recovery quick enough to test: short locks, fast stall checks. */
export const FAULT_ENV = {
  BERTH_LOCK_TTL_MS: '3000',
  BERTH_STALLED_INTERVAL_MS: '1000',
  BERTH_RECONCILE_INTERVAL_MS: '2000',
  BERTH_JOB_BACKOFF_MS: '300',
  BERTH_JOB_ATTEMPTS: '8',
  BERTH_HTTP_READY_TIMEOUT_MS: '30000',
  BERTH_PROBE_INTERVAL_MS: '1000',
  BERTH_RATE_LIMIT_PER_MINUTE: '0',
};

/**
 * A private Redis, so restarting it disturbs nobody else on the machine. Its port is one no
 * one listens on when the suite starts (a leftover server from an interrupted run would
 * otherwise answer in its place); a restart reuses it.
 */
export class PrivateRedis {
  private child?: ChildProcess;
  private port = 0;
  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }
  async start(): Promise<void> {
    this.port ||= await freePort();
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    this.child = child;
    await eventually(
      () => {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`redis-server on port ${this.port} exited (${child.exitCode ?? child.signalCode})`);
        try {
          return execFileSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' }).includes('PONG') || undefined;
        } catch {
          return undefined;
        }
      },
      'the private Redis to answer',
      30_000,
    );
    if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited (${child.exitCode}): is the port taken?`);
  }
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

/** A TCP port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** An API process (the harness) and a separate worker process that can be killed. */
export class FaultRig {
  api!: Harness;
  worker?: BerthProcess;
  constructor(private readonly env: Record<string, string>) {}

  async start(): Promise<void> {
    this.api = await startHarness({ ...this.env, BERTH_ROLE: 'api' });
    await this.startWorker();
  }

  async startWorker(): Promise<BerthProcess> {
    this.worker = spawnBerth(testEnv({ ...this.env, BERTH_ROLE: 'worker' }));
    await waitForOutput(this.worker, /\(worker\) started/);
    return this.worker;
  }

  async killWorker(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const w = this.worker;
    this.worker = undefined;
    return w ? w.stop(signal) : null;
  }

  async stop(): Promise<void> {
    await this.killWorker('SIGTERM');
    await this.api.stop();
  }

  key(): string {
    return this.api.admin;
  }

  /** The last lines each process printed. */
  tail(chars = 6000): string {
    const w = this.worker?.child;
    // Whether the worker is still there: a worker that died mid-case leaves its jobs RUNNING.
    const state = !w
      ? '(none)'
      : w.exitCode === null && w.signalCode === null
        ? `pid ${w.pid}, running`
        : `exited (code ${w.exitCode}, signal ${w.signalCode})`;
    return [`[api]\n${this.api.berth.output().slice(-chars)}`, `[worker] ${state}\n${this.worker?.output().slice(-chars) ?? ''}`].join(
      '\n',
    );
  }
}

export interface CaseResult {
  name: string;
  outcome: 'converged' | 'FAILED';
  convergeMs: number;
  note: string;
}

export const results: CaseResult[] = [];

/** Runs one fault case, timing from the fault to convergence, and records the outcome. */
/** Set by the suite: the last output of its Berth processes, printed when a case fails. */
let diagnose: (() => string) | undefined;
export const onFailurePrint = (f: () => string) => {
  diagnose = f;
};

export async function faultCase(name: string, fault: () => Promise<string | void>, converge: () => Promise<void>): Promise<void> {
  const note = (await fault()) ?? '';
  const t = Date.now();
  try {
    await converge();
    results.push({ name, outcome: 'converged', convergeMs: Date.now() - t, note });
  } catch (e) {
    results.push({ name, outcome: 'FAILED', convergeMs: Date.now() - t, note: `${note} ${(e as Error).message}`.trim() });
    if (diagnose) process.stderr.write(`\n--- ${name}: what the Berth processes printed last ---\n${diagnose()}\n`);
    throw e;
  }
}

export function printSummary(): void {
  const rows = results.map(
    (r) => `| ${r.name.padEnd(58)} | ${r.outcome.padEnd(9)} | ${(r.convergeMs / 1000).toFixed(1).padStart(6)} s | ${r.note}`,
  );
  const table = ['', 'Fault-injection summary', `| ${'case'.padEnd(58)} | outcome   | converge | note`, ...rows, ''].join('\n');
  process.stdout.write(`${table}\n`);
  const dir = process.env.BERTH_TEST_OUTPUT ?? join(root, 'test-output');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'faults-summary.txt'), table);
  writeFileSync(join(dir, 'faults-summary.json'), JSON.stringify(results, null, 2));
}

/**
 * The invariants every case ends with: each live site in its desired state with exactly one
 * WordPress container answering when it should run, no unfinished job, no Docker object of
 * this instance that no site or tenant claims, no duplicated network, database server or
 * volume, and on each database server exactly the live sites' databases and users.
 */
export async function assertConverged(h: Harness, instance: string, timeoutMs = 120_000): Promise<void> {
  await eventually(
    async () => {
      // Each "not yet" is thrown, so that a timeout says what was still wrong.
      const { rows: open } = await h.db.query(
        `SELECT id, kind, status, attempts, steps, error FROM "Job" WHERE status IN ('QUEUED', 'RUNNING')`,
      );
      if (open.length > 0) throw new Error(`${open.length} job(s) unfinished, e.g. ${JSON.stringify(open[0])}`);
      const { rows: sites } = await h.db.query(
        `SELECT s.id, s.name, s.status, s."desiredState", s."hostPort", t.slug FROM "Site" s JOIN "Tenant" t ON t.id = s."tenantId" WHERE s.status <> 'DELETED'`,
      );
      const containers = await h.docker.listContainers({
        all: true,
        filters: { label: [`berth.instance=${instance}`, 'berth.role=wordpress'] },
      });
      for (const s of sites) {
        const mine = containers.filter((c) => c.Labels['berth.site-id'] === s.id);
        const seen = `site ${s.slug}/${s.name} ${s.status}, wants ${s.desiredState}, containers ${JSON.stringify(mine.map((c) => c.State))}`;
        if (s.desiredState === 'RUNNING' && (s.status !== 'RUNNING' || mine.length !== 1 || mine[0].State !== 'running'))
          throw new Error(seen);
        if (s.desiredState === 'STOPPED' && (s.status !== 'STOPPED' || mine.length !== 1 || mine[0].State === 'running'))
          throw new Error(seen);
        if (s.desiredState === 'ABSENT') throw new Error(seen);
      }
      const live = new Set(sites.map((s) => s.id));
      const stray = containers.find((c) => !live.has(c.Labels['berth.site-id']));
      if (stray) throw new Error(`container ${stray.Names[0]} belongs to no live site`);
      return true;
    },
    'every site to converge',
    timeoutMs,
  );
  const networks = await h.docker.listNetworks({ filters: { label: [`berth.instance=${instance}`] } });
  const names = networks.map((n) => n.Name);
  expect(new Set(names).size).toBe(names.length);
  // A database server the Engine has just (re)started can take a moment to answer.
  await eventually(
    async () => {
      const problems = await strayTenantObjects(h, instance);
      if (problems.length) throw new Error(problems.join('; '));
      return true;
    },
    'no stray or duplicate database server, volume, network, MariaDB database or user',
    60_000,
    1000,
  );
  const { rows: running } = await h.db.query(`SELECT s.id, s."hostPort" FROM "Site" s WHERE s.status = 'RUNNING'`);
  // A container the Engine has just (re)started can take a moment to answer.
  for (const r of running) {
    const status = await eventually(
      async () => (await fetch(`http://127.0.0.1:${r.hostPort}/`, { signal: AbortSignal.timeout(5000) })).status,
      `site ${r.id} to answer HTTP`,
      60_000,
      250,
    );
    expect(status).toBe(200);
  }
}

/** Users every database server has of its own; anything else must be a live site's. */
const SYSTEM_USERS = new Set(['root', 'mariadb.sys', 'mysql', 'healthcheck', 'PUBLIC', '']);
const SYSTEM_DATABASES = new Set(['information_schema', 'mysql', 'performance_schema', 'sys']);

/**
 * What is wrong with the tenants' objects of this instance: per tenant at most one database
 * server, database volume and network, each for a tenant that exists; a site volume only for
 * a live site, one each; and on each database server exactly the live sites' databases and
 * users (listed with the server's root password, which its container carries).
 */
export async function strayTenantObjects(h: Harness, instance: string): Promise<string[]> {
  const problems: string[] = [];
  const filters = { label: [`berth.instance=${instance}`] };
  const { rows: tenants } = await h.db.query<{ slug: string }>('SELECT slug FROM "Tenant"');
  const { rows: sites } = await h.db.query<{ id: string; slug: string; dbName: string; dbUser: string }>(
    `SELECT s.id, t.slug, s."dbName", s."dbUser" FROM "Site" s JOIN "Tenant" t ON t.id = s."tenantId" WHERE s.status <> 'DELETED'`,
  );
  const known = new Set(tenants.map((t) => t.slug));
  const live = new Set(sites.map((s) => s.id));
  const perTenant = (what: string, objects: { name: string; labels: Record<string, string> }[]) => {
    const seen = new Map<string, string[]>();
    for (const o of objects) {
      const slug = o.labels['berth.tenant'];
      if (!known.has(slug)) problems.push(`${what} ${o.name} belongs to no tenant`);
      seen.set(slug, [...(seen.get(slug) ?? []), o.name]);
    }
    for (const [slug, list] of seen) if (list.length > 1) problems.push(`tenant ${slug} has ${list.length} ${what}s: ${list.join(', ')}`);
  };
  const dbServers = await h.docker.listContainers({ all: true, filters: { label: [...filters.label, 'berth.role=db'] } });
  perTenant(
    'database server',
    dbServers.map((c) => ({ name: c.Names[0], labels: c.Labels })),
  );
  const volumes = (await h.docker.listVolumes({ filters })).Volumes ?? [];
  perTenant(
    'database volume',
    volumes.filter((v) => v.Labels?.['berth.role'] === 'db-volume').map((v) => ({ name: v.Name, labels: v.Labels })),
  );
  const siteVolumes = volumes.filter((v) => v.Labels?.['berth.role'] === 'volume');
  for (const v of siteVolumes) if (!live.has(v.Labels['berth.site-id'])) problems.push(`volume ${v.Name} belongs to no live site`);
  for (const s of sites) {
    const n = siteVolumes.filter((v) => v.Labels['berth.site-id'] === s.id).length;
    if (n !== 1) problems.push(`site ${s.slug}/${s.id} has ${n} volumes`);
  }
  const networks = await h.docker.listNetworks({ filters });
  perTenant(
    'network',
    networks.map((n) => ({ name: n.Name, labels: n.Labels ?? {} })),
  );

  for (const c of dbServers) {
    const slug = c.Labels['berth.tenant'];
    const mine = sites.filter((s) => s.slug === slug);
    if (c.State !== 'running') {
      if (mine.length) problems.push(`database server ${c.Names[0]} of tenant ${slug} with ${mine.length} live site(s) is ${c.State}`);
      continue;
    }
    const info = await h.docker.getContainer(c.Id).inspect();
    const rootPassword = info.Config.Env.find((e) => e.startsWith('MARIADB_ROOT_PASSWORD='))?.slice('MARIADB_ROOT_PASSWORD='.length);
    if (!rootPassword) {
      problems.push(`database server ${c.Names[0]} has no root password in its environment`);
      continue;
    }
    const listed = await sqlOn(
      h.docker,
      c.Id,
      rootPassword,
      "SELECT CONCAT('database ', schema_name) FROM information_schema.schemata UNION ALL SELECT CONCAT('user ', user, '@', host) FROM mysql.user",
    );
    if (listed.code !== 0) {
      problems.push(`listing databases on ${c.Names[0]} failed (exit ${listed.code}): ${listed.out.trim().slice(0, 200)}`);
      continue;
    }
    const found = listed.out
      .split('\n')
      .map((l) => l.trim())
      .filter(
        (l) =>
          l &&
          !(l.startsWith('database ') && SYSTEM_DATABASES.has(l.slice(9))) &&
          !(l.startsWith('user ') && SYSTEM_USERS.has(l.slice(5, l.lastIndexOf('@')))),
      )
      .sort();
    const expected = mine.flatMap((s) => [`database ${s.dbName}`, `user ${s.dbUser}@%`]).sort();
    if (JSON.stringify(found) !== JSON.stringify(expected))
      problems.push(`database server ${c.Names[0]} holds ${JSON.stringify(found)}, its live sites need ${JSON.stringify(expected)}`);
  }
  return problems;
}

/** Runs SQL as root on a database server; the password travels in the exec's environment. */
async function sqlOn(docker: Docker, container: string, rootPassword: string, sql: string): Promise<{ code: number; out: string }> {
  const cmd = [
    'sh',
    '-c',
    'c=$(command -v mariadb || command -v mysql) && exec "$c" -uroot -h127.0.0.1 --protocol=tcp --batch --skip-column-names -e "$BERTH_SQL"',
  ];
  return exec(docker, container, cmd, undefined, [`MYSQL_PWD=${rootPassword}`, `BERTH_SQL=${sql}`]);
}

export const authHeader = auth;
