/**
 * The monitor's probing at scale (issue 6/6: probing 10,000 sites at the default interval
 * fits in one worker's CPU with headroom; probes per second per core, measured). Berth's own
 * MonitorService and EdgeService from dist/, with its Prisma client on a database of its
 * own, its Redis client on a Redis database of its own and its metrics, probing site rows
 * for `BENCH_PROBE_SECONDS` (30) after a warm-up; the CPU is this process's (everything but
 * the targets), the probes counted as the monitor makes them.
 *
 * The targets are a stand-in: child processes answering for every site, through "the
 * edge" (one port, any Host, as Caddy's probe route does; and over HTTPS with a certificate
 * for every site's hostname, as Caddy does for customers: the real edge is Caddy, whose CPU
 * is not Berth's) and on each site's own port (10,000 ports, for BERTH_EDGE=none). It answers
 * 500 for 1 % of the sites: the positive control, which must take exactly those DOWN (the
 * health transitions are counted by a stand-in for SiteHealthService, which would write an
 * event; none happen in a steady state).
 *
 * `BENCH_PROBE_SITES` (10000) rows; BERTH_PROBE_INTERVAL_MS as configured (default 5000), so
 * the schedule asks for sites / interval probes a second. Run by bench/control-loops.sh
 * (`npm run bench:loops`, and the `loops` phase of `npm run bench`).
 */
/* eslint-disable @typescript-eslint/no-require-imports -- Berth's compiled modules, from its build */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { cpuMs, dropDatabase, freshDatabase, round } from './support';

const ROOT = resolve(__dirname, '../..');
const dist = (m: string) => require(join(ROOT, 'dist', m));
const SITES = Number(process.env.BENCH_PROBE_SITES ?? 10_000);
const SECONDS = Number(process.env.BENCH_PROBE_SECONDS ?? 30);
const INTERVAL = Number(process.env.BERTH_PROBE_INTERVAL_MS ?? 5000);
const DB = 'berth_bench_probes';
const BROKEN_EVERY = 100;

/**
 * A child answering for every site: `edge`, on the edge's ports (by Host, over HTTP and
 * HTTPS), or `own`, on each site's own port (two processes: each stays under the limit of
 * open files with 10,000 sockets).
 */
async function target(kind: string): Promise<void> {
  const answer = (broken: boolean, res: import('node:http').ServerResponse) => {
    res.writeHead(broken ? 500 : 200, { 'content-type': 'text/html' });
    res.end(broken ? 'broken\n' : '<!doctype html><title>ok</title>\n');
  };
  const servers: Server[] = [];
  const tls = {
    key: readFileSync(join(process.env.BENCH_TLS_DIR as string, 'key.pem')),
    cert: readFileSync(join(process.env.BENCH_TLS_DIR as string, 'cert.pem')),
  };
  /** Listens on a free port, which it answers (over HTTPS with `secure`). */
  const listen = (handler: Parameters<typeof createServer>[1], keepAliveMs: number, secure = false) =>
    new Promise<number>((ok, fail) => {
      const s = secure ? createHttpsServer(tls, handler) : createServer(handler);
      s.keepAliveTimeout = keepAliveMs;
      servers.push(s);
      s.once('error', fail).listen(0, '127.0.0.1', () => ok((s.address() as { port: number }).port));
    });
  // Caddy keeps idle connections 5 minutes; Apache (a site's own port) 5 s.
  if (kind === 'edge') {
    const byHost: Parameters<typeof createServer>[1] = (req, res) => answer(/^b\d+\./.test(req.headers.host ?? ''), res);
    process.send?.({ edge: await listen(byHost, 300_000), edgeTls: await listen(byHost, 300_000, true) });
    return;
  }
  const own: number[] = [];
  for (let i = 0; i < SITES; i++) own.push(await listen((_req, res) => answer(i % BROKEN_EVERY === 0, res), 5000));
  process.send?.({ own });
}

async function main(): Promise<void> {
  const url = new URL(await freshDatabase(process.env.DATABASE_URL as string, DB, dist('database/migrator.js').migrate));
  const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  redisUrl.pathname = '/13';

  // The stand-in edge's certificate for every site's hostname (ECDSA P-256, as Caddy's internal CA issues).
  const tlsDir = mkdtempSync(join(tmpdir(), 'berth-probes-'));
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'],
      ...[
        '-keyout',
        join(tlsDir, 'key.pem'),
        '-out',
        join(tlsDir, 'cert.pem'),
        '-subj',
        '/CN=probes.test',
        '-addext',
        'subjectAltName=DNS:*.probes.test',
      ],
    ],
    { stdio: 'ignore' },
  );
  const root = readFileSync(join(tlsDir, 'cert.pem'), 'utf8');
  /** Starts a child of `kind`; it ends with this process, however that ends. */
  const children: ChildProcess[] = [];
  const start = <T>(kind: string) => {
    const child = fork(__filename, ['target', kind], { env: { ...process.env, BENCH_PROBE_SITES: String(SITES), BENCH_TLS_DIR: tlsDir } });
    children.push(child);
    return new Promise<T>((ok, fail) => {
      child.once('message', (m) => ok(m as T));
      child.once('exit', (code) => fail(new Error(`the targets (${kind}) exited (${code})`)));
    });
  };
  process.on('exit', () => children.forEach((c) => c.kill()));
  const ports = { ...(await start<{ edge: number; edgeTls: number }>('edge')), ...(await start<{ own: number[] }>('own')) };

  const db = new Client({ connectionString: url.toString() });
  await db.connect();
  // Ten sites a tenant, site n on the n-th port; its primary hostname says whether its target answers 500.
  await db.query(
    `INSERT INTO "Tenant" (id, slug, name, "contactEmail", "networkIndex", "dbRootPasswordEnc", "updatedAt")
     SELECT gen_random_uuid(), 'pt' || g, 'Probes ' || g, 'ops@pt' || g || '.example', g + 1, 'x', now() FROM generate_series(0, $1 - 1) g`,
    [Math.ceil(SITES / 10)],
  );
  await db.query(
    `WITH t AS (SELECT id, "networkIndex" - 1 AS i FROM "Tenant"), s AS (SELECT t.id AS tid, t.i * 10 + k AS n, k FROM t, generate_series(0, 9) k)
     INSERT INTO "Site" (id, "tenantId", name, "liveName", status, "desiredState", health, "dbName", "dbUser", "dbPasswordEnc", "hostPort", "installedAt", "updatedAt")
     SELECT gen_random_uuid(), tid, 'site-' || k, 'site-' || k, 'RUNNING', 'RUNNING', 'UP', 'wp_' || n, 'wp_' || n, 'x', ($2::int[])[n + 1], now(), now()
     FROM s WHERE n < $1`,
    [SITES, ports.own],
  );
  await db.query(
    `INSERT INTO "Domain" (id, "siteId", "tenantId", hostname, "primary", "verifiedAt")
     SELECT gen_random_uuid(), s.id, s."tenantId", CASE WHEN (p.i - 1) % $2 = 0 THEN 'b' ELSE 's' END || (p.i - 1) || '.probes.test', true, now()
     FROM "Site" s JOIN unnest($1::int[]) WITH ORDINALITY AS p(port, i) ON s."hostPort" = p.port`,
    [ports.own, BROKEN_EVERY],
  );
  const broken = new Set(
    (await db.query(`SELECT "siteId" AS id FROM "Domain" WHERE hostname LIKE 'b%'`)).rows.map((r: { id: string }) => r.id),
  );

  const rows: Record<string, unknown>[] = [];
  // 'edge, HTTPS': each probe a request over HTTPS with the site's hostname as SNI, as a
  // customer's (and as Berth probed before its probes had their own route on the edge's HTTP
  // port): Berth's own HTTPS request (the one a job's "route through the edge" makes).
  for (const path of ['edge', 'edge, HTTPS', 'own port'] as const) {
    const config = dist('config/config.js').loadConfig({
      ...process.env,
      DATABASE_URL: url.toString(),
      REDIS_URL: redisUrl.toString(),
      BERTH_INSTANCE: 'bench-probes',
      BERTH_ADMIN_KEY: `berth_bench-${randomBytes(24).toString('base64url')}`,
      BERTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      BERTH_EDGE: path === 'own port' ? 'none' : 'caddy',
      BERTH_EDGE_HTTP_PORT: String(ports.edge),
      BERTH_EDGE_HTTPS_PORT: String(ports.edgeTls),
      BERTH_TLS: 'internal',
      BERTH_LOG_LEVEL: 'error',
    });
    const prisma = new (dist('database/prisma.service.js').PrismaService)(config);
    const redis = new (dist('redis/redis.service.js').RedisService)(config);
    if ((await redis.client.dbsize()) !== 0)
      throw new Error(`Redis database 13 of ${redisUrl.host} is not empty: this bench uses it; empty it first`);
    const metrics = new (dist('metrics/metrics.service.js').MetricsService)(prisma, config);
    const caddy = { adminListen: '127.0.0.1:2019', internalRoot: async () => root };
    const edge = new (dist('edge/edge.service.js').EdgeService)(config, prisma, redis, caddy, metrics);
    if (path === 'edge, HTTPS')
      edge.probe = (hostname: string, timeoutMs: number) =>
        edge.fetchStatus(hostname, AbortSignal.timeout(timeoutMs)).then(
          (a: { status: number }) => (a.status >= 500 ? `HTTP ${a.status}` : undefined),
          (e: Error) => e.message,
        );
    const down = new Set<string>();
    const health = {
      transition: async (id: string, to: string) => {
        if (to === 'DOWN') down.add(id);
        return true;
      },
    };
    const monitor = new (dist('monitor/monitor.service.js').MonitorService)(config, prisma, redis, health, edge, metrics);
    let probes = 0;
    const probe = monitor.probe.bind(monitor);
    monitor.probe = async (site: unknown) => {
      const up = await probe(site);
      probes += 1;
      return up;
    };
    try {
      process.stderr.write(`[bench] probes (${path}): ${SITES} sites every ${INTERVAL} ms, warming up\n`);
      monitor.start();
      // The warm-up: every site scheduled and probed at least three times (the control's sites DOWN).
      const warmUntil = Date.now() + 3 * INTERVAL + 15_000;
      while (Date.now() < warmUntil && down.size < broken.size) await sleep(500);
      await sleep(Math.max(0, warmUntil - Date.now()));
      const [c0, p0, t0] = [cpuMs(), probes, Date.now()];
      // Whether the worker keeps up: how many sites are overdue by more than a second, each second.
      let overdue = 0;
      while (Date.now() - t0 < SECONDS * 1000) {
        await sleep(1000);
        overdue = Math.max(overdue, await redis.client.zcount('berth:monitor:due', '-inf', String(Date.now() - 1000)));
      }
      const [c1, p1, t1] = [cpuMs(), probes, Date.now()];
      await monitor.stop();
      const rate = ((p1 - p0) * 1000) / (t1 - t0);
      const cpuPct = (100 * (c1 - c0)) / (t1 - t0);
      const wrong = [...down].filter((id) => !broken.has(id)).length;
      const missed = [...broken].filter((id) => !down.has(id)).length;
      // A healthy site taken DOWN is always wrong; a broken one not (yet) DOWN only when the probes keep up.
      if (wrong || (missed && !overdue))
        throw new Error(`the control: ${wrong} healthy sites taken DOWN, ${missed} of the ${broken.size} broken ones not`);
      rows.push({
        path,
        asked: round((SITES * 1000) / INTERVAL),
        done: round(rate),
        cpuPctOfOneCore: round(cpuPct, 1),
        cpuMsPerProbe: round((c1 - c0) / (p1 - p0), 3),
        perCore: round(((p1 - p0) * 1000) / (c1 - c0)),
        overdue,
        brokenDown: `${broken.size - missed}/${broken.size}`,
      });
      process.stderr.write(`[bench]   ${JSON.stringify(rows.at(-1))}\n`);
    } finally {
      // Stopped: no probe starts, the running ones have booked their next one.
      await monitor.stop();
      await redis.client.flushdb();
      await redis.onModuleDestroy?.();
      redis.client.disconnect();
      await prisma.$disconnect();
    }
  }
  children.forEach((c) => c.kill());
  rmSync(tlsDir, { recursive: true, force: true });
  await db.end();
  await dropDatabase(process.env.DATABASE_URL as string, DB);

  const lines = [
    `Probing ${SITES} sites, each ${INTERVAL} ms after its last probe ended, for ${SECONDS} s (stand-in targets in other processes; Berth's CPU only; 1 % answer 500: no other site was taken DOWN)`,
    `| path | probes/s (sites / interval) | probes/s done | most sites overdue by > 1 s | broken sites DOWN | Berth CPU, % of one core | CPU ms a probe | probes/s a core |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...rows.map(
      (r) =>
        `| ${r.path} | ${r.asked} | ${r.done} | ${r.overdue} | ${r.brokenDown} | ${r.cpuPctOfOneCore} | ${r.cpuMsPerProbe} | ${r.perCore} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[2] === 'target') {
  target(process.argv[3]).catch((e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exit(1);
  });
} else {
  main().catch((e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exit(1);
  });
}
