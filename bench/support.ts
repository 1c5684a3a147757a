// Helpers for bench/bench.ts: the Berth process, HTTP calls, statistics, /proc sampling.
import Docker from 'dockerode';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';

import { Client } from 'pg';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const now = () => performance.now();
export const round = (n: number, digits = 0) => Number(n.toFixed(digits));

// --- statistics --------------------------------------------------------------------------

/** Percentile with linear interpolation between closest ranks (p in 0..100). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}
export const median = (values: number[]) => percentile(values, 50);

// --- the Berth process ---------------------------------------------------------------------

export interface BerthProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  stop(): Promise<number | null>;
}

/** Starts `node dist/main.js` with env; resolves once it prints its URL. Output goes to logFile. */
export async function startBerth(
  root: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
  pidFile: string,
  nodeArgs: string[] = [],
): Promise<BerthProcess> {
  const child = spawn(process.execPath, [...nodeArgs, `${root}/dist/main.js`], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (!child.pid) throw new Error('could not start Berth');
  writeFileSync(pidFile, `${child.pid}\n`);
  const log = createWriteStream(logFile, { flags: 'a' });
  let out = '';
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Berth did not start within 60 s:\n${out.slice(-3000)}`)), 60_000);
    const onData = (c: Buffer) => {
      log.write(c);
      if (out.length < 100_000) out += c.toString();
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Berth exited with ${code}:\n${out.slice(-3000)}`));
    });
  });
  return {
    child,
    pid: child.pid,
    url,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        // A paused process (the density phase stops it for a while) takes the signal once continued.
        child.kill('SIGCONT');
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      log.end();
      return code;
    },
  };
}

// --- HTTP ----------------------------------------------------------------------------------

export interface Reply<T> {
  status: number;
  body: T;
  ms: number;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export class Api {
  constructor(readonly base: string) {}

  async req<T = any>(method: string, path: string, key?: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const t0 = now();
    const res = await fetch(this.base + path, {
      method,
      headers: {
        ...(key ? { Authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed as T, ms: now() - t0 };
  }

  async must<T = any>(
    method: string,
    path: string,
    key?: string,
    body?: unknown,
    expect = [200, 201, 202],
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> {
    const r = await this.req<T>(method, path, key, body, headers);
    if (!expect.includes(r.status)) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
    return r;
  }
}

/** true when url answers HTTP below 500 within 2 s. */
export async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status < 500;
  } catch {
    return false;
  }
}

// --- processes and /proc ---------------------------------------------------------------------

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Resident memory of a process, MiB (VmRSS). */
export function rssMiB(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
  return m ? Number(m[1]) / 1024 : NaN;
}

const TICK = 100; // USER_HZ on Linux

/** How a process is counted: Berth, the bench itself, containers, the engine, other work. */
export interface Classifier {
  berthPid?: number;
  /** true for a container of this bench (by id), false for another one. */
  ownContainer(id: string): boolean | undefined;
}

const ENGINE = new Set(['dockerd', 'containerd', 'containerd-shim', 'docker-proxy', 'runc', 'runc:[2:INIT]', 'runc init', 'docker-init']);

/**
 * CPU seconds (user + system) of every live process, summed by what it is: "berth",
 * "bench load generator", "bench containers: <command>", "other containers", the Docker
 * engine's processes by name, kernel workers, and anything else by command name.
 */
export function cpuByCommand(c: Classifier): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    let cgroup: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      cgroup = readFileSync(`/proc/${d}/cgroup`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    let comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    const secs = (Number(fields[11]) + Number(fields[12])) / TICK;
    const container = cgroup.match(/\/docker\/([0-9a-f]{64})/)?.[1];
    if (Number(d) === c.berthPid) comm = 'berth';
    else if (Number(d) === process.pid) comm = 'bench load generator';
    else if (container) comm = c.ownContainer(container) === false ? 'other containers' : `bench containers: ${comm}`;
    else if (comm.startsWith('containerd-shim')) comm = 'containerd-shim';
    else if (comm.startsWith('kworker') || comm.startsWith('ksoftirqd') || comm.startsWith('rcu_')) comm = 'kernel workers';
    else if (!ENGINE.has(comm) && !['postgres', 'redis-server'].includes(comm)) comm = `other: ${comm}`;
    out.set(comm, (out.get(comm) ?? 0) + secs);
  }
  return out;
}

/** Whole-machine CPU: busy and total seconds (all cores) from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = v[3] + (v[4] ?? 0);
  return { busy: (total - idle) / TICK, total: total / TICK };
}

export interface CpuReport {
  wallSeconds: number;
  /** Machine busy time as a share of all cores' time, %. */
  machineBusyPct: number;
  /** CPU of processes that are neither the bench's nor shared services (other containers, other node/jest/tsc...), % of one core. */
  otherWorkPct: number;
  /** CPU seconds by process kind over the window (processes alive at its end), largest first. */
  top: { command: string; cpuSeconds: number; pctOfOneCore: number }[];
}

/** Samples Berth's RSS every intervalMs and measures CPU use by process kind over the window. */
export class Sampler {
  private timer?: NodeJS.Timeout;
  private readonly started = now();
  private readonly cpu0: Map<string, number>;
  private readonly m0 = machineCpu();
  readonly rss: number[] = [];

  constructor(
    private readonly pid: number,
    private readonly classify: () => Promise<Classifier>,
    classifier: Classifier,
    intervalMs = 100,
  ) {
    this.cpu0 = cpuByCommand(classifier);
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    try {
      this.rss.push(rssMiB(this.pid));
    } catch {
      // process gone
    }
  }

  async stop(): Promise<{ peakRssMiB: number; cpu: CpuReport }> {
    clearInterval(this.timer);
    this.sample();
    const wall = (now() - this.started) / 1000;
    const m1 = machineCpu();
    const cpu1 = cpuByCommand(await this.classify());
    const all = [...cpu1.entries()]
      .map(([command, s]) => ({ command, cpuSeconds: round(s - (this.cpu0.get(command) ?? 0), 2) }))
      .filter((e) => e.cpuSeconds > 0.05)
      .sort((a, b) => b.cpuSeconds - a.cpuSeconds)
      .map((e) => ({ ...e, pctOfOneCore: round((100 * e.cpuSeconds) / wall) }));
    const other = all
      .filter((e) => e.command === 'other containers' || e.command.startsWith('other: '))
      .reduce((a, e) => a + e.cpuSeconds, 0);
    return {
      peakRssMiB: round(Math.max(...this.rss), 1),
      cpu: {
        wallSeconds: round(wall, 1),
        machineBusyPct: round((100 * (m1.busy - this.m0.busy)) / Math.max(0.01, m1.total - this.m0.total)),
        otherWorkPct: round((100 * other) / wall),
        top: all.slice(0, 10),
      },
    };
  }
}

// --- the machine -------------------------------------------------------------------------------

export async function machineInfo(docker: Docker) {
  const cpus = os.cpus();
  const v = await docker.version();
  let osName = os.type();
  try {
    osName = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]+)"?/m)?.[1] ?? osName;
  } catch {
    // keep os.type()
  }
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    os: osName,
    kernel: os.release(),
    dockerEngine: v.Version,
    dockerApi: v.ApiVersion,
    node: process.version,
  };
}

// --- Docker clean-up -----------------------------------------------------------------------------

/** Removes every container, volume and network carrying all of these labels. */
export async function removeLabelled(docker: Docker, labels: string[]): Promise<number> {
  const filters = { label: labels };
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    containers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  const { Volumes } = await docker.listVolumes({ filters });
  await Promise.all(
    (Volumes ?? []).map((v) =>
      docker
        .getVolume(v.Name)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  const networks = await docker.listNetworks({ filters });
  await Promise.all(
    networks.map((n) =>
      docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined),
    ),
  );
  return containers.length;
}

/** A process's CPU seconds so far (user and system), 0 when it is gone. */
export function processCpuS(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
}

/** Machine CPU busy % over windowMs, not counting the given process (Berth). */
export async function backgroundBusy(excludePid: number | undefined, windowMs = 2000): Promise<number> {
  const own = () => processCpuS(excludePid);
  const m0 = machineCpu();
  const o0 = own();
  await sleep(windowMs);
  const m1 = machineCpu();
  const o1 = own();
  return round((100 * (m1.busy - m0.busy - (o1 - o0))) / Math.max(0.01, m1.total - m0.total));
}

/**
 * Berth's plan settings (PlanSettings in src/sites/site-plan.ts) for a bench that makes a
 * plan's objects itself, under its own instance name and subnets.
 */
export function planSettings(
  instance: string,
  subnetPool: string,
  o: { wordpressImage?: string; dbImage?: string; dbMemoryMb?: number } = {},
) {
  return {
    instance,
    wordpressImage: 'berth/stub-wordpress:latest',
    dbImage: 'berth/mariadb:10.11',
    wordpressDataPath: '/var/www/html',
    publishAddress: '127.0.0.1',
    subnetPool,
    subnetPrefix: 24,
    pidsLimit: 512,
    dbMemoryMb: 512,
    dbCpus: 1,
    ...o,
  };
}

/** Docker objects as a Berth plan lists them (the compiled plan's output, typed for the bench). */
export interface BenchPlan {
  networks: { name: string; subnet: string; gateway: string; labels: Record<string, string> }[];
  volumes: { name: string; labels: Record<string, string> }[];
  containers: { create: Docker.ContainerCreateOptions & { name: string; HostConfig: Docker.HostConfig } }[];
}

/**
 * Makes a plan's networks, volumes and containers (started) with Berth's own create options,
 * each container's passed through `adjust` first; returns the containers' ids.
 */
export async function createPlan(
  docker: Docker,
  plan: BenchPlan,
  adjust: (create: BenchPlan['containers'][number]['create']) => Docker.ContainerCreateOptions = (c) => c,
): Promise<string[]> {
  for (const n of plan.networks) {
    await docker.createNetwork({
      Name: n.name,
      Driver: 'bridge',
      Labels: n.labels,
      IPAM: { Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    });
  }
  for (const v of plan.volumes) await docker.createVolume({ Name: v.name, Labels: v.labels });
  const ids: string[] = [];
  for (const { create } of plan.containers) {
    const c = await docker.createContainer(adjust(create));
    await c.start();
    ids.push(c.id);
  }
  return ids;
}

/**
 * Drops a bench's own database. An autovacuum worker on it, which WITH (FORCE) may not end
 * for a role that is not a superuser, is waited out rather than failing the bench.
 */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const c = new Client({ connectionString: adminUrl });
  await c.connect();
  try {
    for (let i = 0; ; i++) {
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        return;
      } catch (e) {
        if (i >= 20 || !/pg_signal_backend|being accessed/.test((e as Error).message)) throw e;
        await sleep(500);
      }
    }
  } finally {
    await c.end();
  }
}

/** This process's CPU time so far, in ms (user and system). */
export const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** A bench's own database, dropped (waiting out an autovacuum worker on it) and made empty; answers its URL. */
export async function emptyDatabase(adminUrl: string, name: string): Promise<string> {
  await dropDatabase(adminUrl, name);
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A bench's own database, made afresh and migrated by `migrate`; answers its URL. */
export async function freshDatabase(adminUrl: string, name: string, migrate: (url: string) => Promise<void>): Promise<string> {
  const url = await emptyDatabase(adminUrl, name);
  await migrate(url);
  return url;
}
