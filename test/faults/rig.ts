import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { auth, spawnBerth, startHarness, waitForOutput, type BerthProcess, type Harness } from '../harness';
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

/** A private Redis, so restarting it disturbs nobody else on the machine. */
export class PrivateRedis {
  private child?: ChildProcess;
  constructor(readonly port = 6390 + Number(process.env.BERTH_TEST_SLOT ?? '0')) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }
  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await eventually(() => {
      try {
        return execFileSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' }).includes('PONG') || undefined;
      } catch {
        return undefined;
      }
    }, 'the private Redis to answer');
  }
  async stop(): Promise<void> {
    if (!this.child) return;
    const exited = new Promise((r) => this.child!.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }
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
}

export interface CaseResult {
  name: string;
  outcome: 'converged' | 'FAILED';
  convergeMs: number;
  note: string;
}

export const results: CaseResult[] = [];

/** Runs one fault case, timing from the fault to convergence, and records the outcome. */
export async function faultCase(name: string, fault: () => Promise<string | void>, converge: () => Promise<void>): Promise<void> {
  const note = (await fault()) ?? '';
  const t = Date.now();
  try {
    await converge();
    results.push({ name, outcome: 'converged', convergeMs: Date.now() - t, note });
  } catch (e) {
    results.push({ name, outcome: 'FAILED', convergeMs: Date.now() - t, note: `${note} ${(e as Error).message}`.trim() });
    throw e;
  }
}

export function printSummary(): void {
  const rows = results.map((r) => `| ${r.name.padEnd(58)} | ${r.outcome.padEnd(9)} | ${(r.convergeMs / 1000).toFixed(1).padStart(6)} s | ${r.note}`);
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
 * this instance that no site or tenant claims, no duplicated network.
 */
export async function assertConverged(h: Harness, instance: string, timeoutMs = 120_000): Promise<void> {
  await eventually(async () => {
    const { rows: open } = await h.db.query(`SELECT count(*)::int AS n FROM "Job" WHERE status IN ('QUEUED', 'RUNNING')`);
    if (open[0].n > 0) return undefined;
    const { rows: sites } = await h.db.query(`SELECT s.id, s.name, s.status, s."desiredState", s."hostPort", t.slug FROM "Site" s JOIN "Tenant" t ON t.id = s."tenantId" WHERE s.status <> 'DELETED'`);
    const containers = await h.docker.listContainers({ all: true, filters: { label: [`berth.instance=${instance}`, 'berth.role=wordpress'] } });
    for (const s of sites) {
      const mine = containers.filter((c) => c.Labels['berth.site-id'] === s.id);
      if (s.desiredState === 'RUNNING' && (s.status !== 'RUNNING' || mine.length !== 1 || mine[0].State !== 'running')) return undefined;
      if (s.desiredState === 'STOPPED' && (s.status !== 'STOPPED' || mine.length !== 1 || mine[0].State === 'running')) return undefined;
      if (s.desiredState === 'ABSENT') return undefined;
    }
    const live = new Set(sites.map((s) => s.id));
    if (containers.some((c) => !live.has(c.Labels['berth.site-id']))) return undefined;
    return true;
  }, 'every site to converge', timeoutMs);
  const networks = await h.docker.listNetworks({ filters: { label: [`berth.instance=${instance}`] } });
  const names = networks.map((n) => n.Name);
  expect(new Set(names).size).toBe(names.length);
  const { rows: running } = await h.db.query(`SELECT s.id, s."hostPort" FROM "Site" s WHERE s.status = 'RUNNING'`);
  for (const r of running) expect((await fetch(`http://127.0.0.1:${r.hostPort}/`)).status).toBe(200);
}

export const authHeader = auth;
