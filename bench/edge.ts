/**
 * The edge at scale: Caddy (Debian's, as `npm run up` runs it) driven with the configuration
 * Berth makes (dist/edge/edge-plan.js), at 200, 2,000 and 10,000 routes. For each size it
 * measures, on this machine:
 *   - a whole load of a changed configuration (what every change costs: Caddy reloads it all;
 *     it skips only a load identical to the running one),
 *   - one site added: from the start of the load until its hostname answers over HTTPS
 *     (including its first certificate, issued on demand by Caddy's internal CA),
 *   - 100 sites added at once (one load): until all 100 answer,
 *   - the bytes Caddy's log grows by per change, and Caddy's resident memory,
 *   - a pass that finds nothing changed, both ways Berth's EdgeService makes one: reading
 *     Caddy's whole configuration and comparing it (one pass in 12), and asking Caddy for the
 *     configuration's marker (the others); this process's CPU and Caddy's, a pass. The
 *     database's side of a pass (the routed sites' query) is not in it.
 * The upstream is one small HTTP server in this process (a stand-in for the sites: the edge's
 * own cost is what is measured). Run: `npm run build && tsc -p bench/tsconfig.json &&
 * node bench/.out/edge.js [sizes]`; it starts its own Caddy (admin 127.0.0.1:2399, ports
 * 19480/19443, data in a temporary directory) and stops it at the end.
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { cpuMs, processCpuS } from './support';

const DIST = resolve(__dirname, '../../dist');
const ADMIN = '127.0.0.1:2399';
const HTTP_PORT = 19480;
const HTTPS_PORT = 19443;

interface EdgePlan {
  edgeConfig(routes: { siteId: string; primary: string; aliases: string[]; upstream: string }[], s: Record<string, unknown>): object;
  markerOf(config: object): string;
}
/* eslint-disable @typescript-eslint/no-require-imports -- Berth's compiled modules, from its build */
const plan = require(join(DIST, 'edge/edge-plan.js')) as EdgePlan;
const { stableStringify } = require(join(DIST, 'common/json.js')) as { stableStringify(v: unknown): string };
/* eslint-enable @typescript-eslint/no-require-imports */
const PASS_ROUNDS = 5;

/** PASS_ROUNDS runs of `pass`: its median wall time, and this process's and Caddy's CPU a pass (means). */
async function passCost(caddyPid: number, pass: () => Promise<boolean>) {
  const walls: number[] = [];
  const [own0, caddy0] = [cpuMs(), processCpuS(caddyPid)];
  for (let i = 0; i < PASS_ROUNDS; i++) {
    const t0 = performance.now();
    if (!(await pass())) throw new Error('the pass did not find the configuration unchanged');
    walls.push(performance.now() - t0);
  }
  const own = cpuMs() - own0;
  return {
    wallMs: Math.round(median(walls)),
    cpuMs: Math.round(own / PASS_ROUNDS),
    caddyCpuMs: Math.round(((processCpuS(caddyPid) - caddy0) * 1000) / PASS_ROUNDS),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function admin(method: string, path: string, body?: unknown): Promise<Response> {
  const send = () =>
    fetch(`http://${ADMIN}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const res = await send().catch(() => send());
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res;
}

function get(root: string, hostname: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: HTTPS_PORT,
        path: '/',
        servername: hostname,
        headers: { host: hostname },
        ca: root,
        timeout: 10_000,
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolvePromise(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Waits until `hostname` answers 200 through the edge; returns when. */
async function servedAt(root: string, hostname: string, deadline: number): Promise<number> {
  for (;;) {
    const status = await get(root, hostname).catch(() => 0);
    if (status === 200) return performance.now();
    if (Date.now() > deadline) throw new Error(`${hostname} not served in time`);
    await sleep(20);
  }
}

const routes = (n: number, upstream: string, from = 0) =>
  Array.from({ length: n }, (_, i) => ({
    siteId: `site-${String(from + i).padStart(6, '0')}`,
    primary: `s${from + i}-bench.edge.test`,
    aliases: [`www.s${from + i}-bench.edge.test`],
    upstream,
  }));

async function main(): Promise<void> {
  const sizes = (process.argv[2] ?? '200,2000,10000').split(',').map(Number);
  const dir = mkdtempSync(join(os.tmpdir(), 'berth-edge-bench-'));
  const log = join(dir, 'caddy.log');
  writeFileSync(join(dir, 'boot.json'), JSON.stringify({ admin: { listen: ADMIN, config: { persist: false } } }));
  const upstreamServer = createServer((_req, res) => res.end('ok\n'));
  await new Promise<void>((r) => upstreamServer.listen(0, '127.0.0.1', r));
  const upstream = `127.0.0.1:${(upstreamServer.address() as { port: number }).port}`;
  const settings = {
    adminListen: ADMIN,
    httpPort: HTTP_PORT,
    httpsPort: HTTPS_PORT,
    tls: 'internal',
    probeToken: randomBytes(16).toString('hex'),
  };
  const { openSync } = await import('node:fs');
  const out = openSync(log, 'a');
  const caddy: ChildProcess = spawn('caddy', ['run', '--config', join(dir, 'boot.json')], {
    cwd: '/',
    env: { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') },
    stdio: ['ignore', out, out],
  });
  const results: Record<string, unknown>[] = [];
  try {
    for (let i = 0; ; i++) {
      if (
        await fetch(`http://${ADMIN}/config/`).then(
          () => true,
          () => false,
        )
      )
        break;
      if (i > 100) throw new Error('caddy did not start');
      await sleep(100);
    }
    await admin('POST', '/load', plan.edgeConfig(routes(1, upstream), settings));
    const root = ((await (await admin('GET', '/pki/ca/local')).json()) as { root_certificate: string }).root_certificate;
    for (const n of sizes) {
      const base = routes(n, upstream);
      const bytes = JSON.stringify(plan.edgeConfig(base, settings)).length;
      const loads: number[] = [];
      // Caddy skips a load identical to its running configuration: each load differs by one route.
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await admin('POST', '/load', plan.edgeConfig([...base, ...routes(1, upstream, n + 200 + i)], settings));
        loads.push(performance.now() - t0);
      }
      // One site added: its first request also gets its certificate.
      const one = routes(1, upstream, n + 1)[0];
      const logBefore = statSync(log).size;
      const t1 = performance.now();
      await admin('POST', '/load', plan.edgeConfig([...base, one], settings));
      const loadedOne = performance.now() - t1;
      const servedOne = (await servedAt(root, one.primary, Date.now() + 60_000)) - t1;
      const logPerChange = statSync(log).size - logBefore;
      // 100 sites added at once: one load.
      const hundred = routes(100, upstream, n + 10);
      const t2 = performance.now();
      await admin('POST', '/load', plan.edgeConfig([...base, one, ...hundred], settings));
      const all = await Promise.all(hundred.map((r) => servedAt(root, r.primary, Date.now() + 120_000)));
      const servedHundred = Math.max(...all) - t2;
      // A pass that finds nothing changed, against the configuration just loaded.
      const running = plan.edgeConfig([...base, one, ...hundred], settings);
      // Berth keeps its own side's text from the pass that made the configuration.
      const wanted = stableStringify(running);
      const whole = await passCost(caddy.pid as number, async () => {
        const text = await (await admin('GET', '/config/')).text();
        return stableStringify(JSON.parse(text)) === wanted;
      });
      const marker = await passCost(caddy.pid as number, async () => {
        const res = await fetch(`http://${ADMIN}/id/${plan.markerOf(running)}`);
        await res.arrayBuffer();
        return res.ok;
      });
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${caddy.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      const row = {
        routes: n,
        configBytes: bytes,
        loadMsMedian: Math.round(median(loads)),
        oneAddedLoadMs: Math.round(loadedOne),
        oneAddedServedMs: Math.round(servedOne),
        hundredAddedServedMs: Math.round(servedHundred),
        logBytesPerChange: logPerChange,
        caddyRssMiB: Math.round(rss),
        unchangedWholeMs: whole.wallMs,
        unchangedWholeCpuMs: whole.cpuMs,
        unchangedWholeCaddyCpuMs: whole.caddyCpuMs,
        unchangedMarkerMs: marker.wallMs,
        unchangedMarkerCpuMs: marker.cpuMs,
        unchangedMarkerCaddyCpuMs: marker.caddyCpuMs,
      };
      results.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    caddy.kill('SIGTERM');
    upstreamServer.close();
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
  }
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.release()}`;
  console.log(`machine: ${machine}`);
  console.table(results);
}

main().catch((e: Error) => {
  console.error(e);
  process.exit(1);
});
