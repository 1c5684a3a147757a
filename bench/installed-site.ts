/**
 * One site like for like, with the real images: how long a customer waits for a site, from
 * POST /v1/sites until its platform hostname answers over HTTPS through the edge with the
 * installed WordPress (its title on the front page), against bench/script-baseline.sh doing
 * the same work with the docker CLI and curl (same images, same create options, the same
 * installer, a route on its own Caddy). Real images (berth/wordpress:6.1, berth/mariadb:10.11),
 * a real edge, Berth from dist/main.js. Each round: a new tenant's first site and the script,
 * in alternating order, then a second site of the same tenant; `BENCH_ROUNDS` rounds (default
 * 5) after one warm-up round of each. The machine's load before each measurement is recorded.
 *
 * Run by bench/installed-site.sh (`npm run bench:site`, and `npm run bench` unless
 * BENCH_ONLY leaves out `site`), which sets up like npm test and starts two Caddys: Berth's
 * edge (admin 127.0.0.1:2398, ports 19580/19543) and the script's (admin 127.0.0.1:2397,
 * ports 19680/19643).
 * Goals: issue 6/6, Berth ≤ 0.6 × the script; issue 2/6, first site ≤ 15 s, second ≤ 8 s.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import IORedis from 'ioredis';
import { Api, backgroundBusy, emptyDatabase, machineInfo, median, now, removeLabelled, round, run, startBerth } from './support';

const ROOT = resolve(__dirname, '../..');
const OUT = join(ROOT, 'bench', '.out');
const INSTANCE = 'bench-site';
const HTTP_PORT = 19580;
const HTTPS_PORT = 19543;
const BASE = 'bench-site.berth.localhost';
const SCRIPT = { admin: 'http://127.0.0.1:2397', httpPort: 19680, httpsPort: 19643, base: 'script.berth.localhost' };
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/**
 * BENCH_KEEP_SITES=1: every round's sites (both sides') are kept until the end, instead of
 * being removed before the next round. On a filesystem without a journal (this machine's
 * /var/lib/docker), ext4 passes over every inode freed in the last minute (five while its
 * block is unwritten) when it makes a file, so each round's removal slows the next round's
 * first start, which copies WordPress's 2,868 files into the new volume. A host that is not
 * deleting sites, or has a journal, does not pay that.
 */
const KEEP_SITES = process.env.BENCH_KEEP_SITES === '1';
const WP_IMAGE = 'berth/wordpress:6.1';
const DB_IMAGE = 'berth/mariadb:10.11';
const ADMIN_KEY = `berth_bench-${randomBytes(24).toString('base64url')}`;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
/** Its own Redis database (bench.ts has 14, probes.ts 13, backups.ts 15), emptied before and after. */
const REDIS_URL = `${(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').replace(/\/\d*$/, '')}/12`;
const emptyRedis = async () => {
  const r = new IORedis(REDIS_URL, { lazyConnect: true });
  try {
    await r.connect();
    await r.flushdb();
  } finally {
    r.disconnect();
  }
};
/* eslint-disable @typescript-eslint/no-require-imports -- Berth's own edge configuration and installer, from its build */
const { edgeConfig } = require(join(ROOT, 'dist/edge/edge-plan.js')) as { edgeConfig: (routes: unknown[], s: unknown) => EdgeConfig };
const { INSTALL_PHP } = require(join(ROOT, 'dist/sites/wordpress-install.js')) as { INSTALL_PHP: string };
/* eslint-enable @typescript-eslint/no-require-imports */

interface EdgeConfig {
  apps: { http: { servers: Record<string, { routes: { '@id'?: string }[] }> } };
}

/** The front page's title through an edge, trusting its CA; undefined while it does not answer 200. */
function title(root: string, hostname: string, port = HTTPS_PORT): Promise<string | undefined> {
  return new Promise((done) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        servername: hostname,
        headers: { host: `${hostname}:${port}` },
        ca: root,
        timeout: 5000,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => done(res.statusCode === 200 ? body.match(/<title>([^<]*)<\/title>/)?.[1] : undefined));
        res.on('error', () => done(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(undefined));
    req.end();
  });
}

async function edgeRoot(admin: string): Promise<string> {
  return ((await (await fetch(`${admin}/pki/ca/local`)).json()) as { root_certificate: string }).root_certificate;
}

/**
 * The script's Caddy gets Berth's edge configuration for no sites, without its catch-all
 * route ("no site here"), so that the script's routes can be appended to it.
 */
async function loadScriptEdge(): Promise<void> {
  const config = edgeConfig([], {
    adminListen: new URL(SCRIPT.admin).host,
    httpPort: SCRIPT.httpPort,
    httpsPort: SCRIPT.httpsPort,
    tls: 'internal',
  });
  const server = config.apps.http.servers.berth;
  server.routes = server.routes.filter((r) => r['@id'] !== 'berth-unrouted');
  const res = await fetch(`${SCRIPT.admin}/load`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(config),
  });
  if (!res.ok) throw new Error(`loading the script's edge: HTTP ${res.status} ${await res.text()}`);
}

let scriptRuns = 0;
/** One run of the script: its wall time, then its objects and its route removed. */
async function scriptSite(caFile: string): Promise<number> {
  scriptRuns += 1;
  const name = `lf${scriptRuns}`;
  const t0 = now();
  await run('bash', [join(ROOT, 'bench/script-baseline.sh'), name, String(32400 + scriptRuns), `10.93.${scriptRuns % 250}.0/24`], {
    ...process.env,
    BENCH_WP_IMAGE: WP_IMAGE,
    BENCH_DB_IMAGE: DB_IMAGE,
    BENCH_INSTALL_PHP: INSTALL_PHP,
    BENCH_TITLE: `Script ${name}`,
    BENCH_EDGE_ADMIN: SCRIPT.admin,
    BENCH_EDGE_HTTPS_PORT: String(SCRIPT.httpsPort),
    BENCH_EDGE_HOSTNAME: `${name}.${SCRIPT.base}`,
    BENCH_EDGE_CA: caFile,
  });
  const ms = now() - t0;
  if (KEEP_SITES) return ms;
  await fetch(`${SCRIPT.admin}/id/bsl_${name}`, { method: 'DELETE' });
  await run('bash', [join(ROOT, 'bench/script-baseline.sh'), '--cleanup']);
  return ms;
}

interface Step {
  name: string;
  startedAt: string;
  finishedAt?: string;
}

async function main(): Promise<void> {
  const dbUrl = await emptyDatabase(process.env.DATABASE_URL as string, 'berth_bench_site');
  await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
  await emptyRedis();
  const berth = await startBerth(
    ROOT,
    {
      ...process.env,
      NODE_ENV: 'production',
      PORT: '0',
      DATABASE_URL: dbUrl,
      REDIS_URL,
      BERTH_INSTANCE: INSTANCE,
      BERTH_ADMIN_KEY: ADMIN_KEY,
      BERTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      BERTH_WORDPRESS_IMAGE: 'berth/wordpress:6.1',
      BERTH_DB_IMAGE: 'berth/mariadb:10.11',
      BERTH_SUBNET_POOL: '10.92.0.0/16',
      BERTH_PORT_RANGE: '29000-29499',
      BERTH_EDGE_HTTP_PORT: String(HTTP_PORT),
      BERTH_EDGE_HTTPS_PORT: String(HTTPS_PORT),
      BERTH_BASE_DOMAIN: BASE,
      BERTH_TLS: 'internal',
      BERTH_LOG_LEVEL: 'warn',
      // Its own backup repository: deleting a tenant forgets its snapshots there.
      BERTH_BACKUP_REPOSITORY: join(OUT, `backups-${Date.now()}`),
      BERTH_BACKUP_PASSWORD: randomBytes(18).toString('base64url'),
    },
    join(OUT, 'installed-site-berth.log'),
    join(OUT, 'installed-site-berth.pid'),
  );
  const api = new Api(berth.url);
  const root = await edgeRoot(process.env.BERTH_EDGE_ADMIN_URL as string);
  await loadScriptEdge();
  const caFile = join(OUT, 'script-edge-ca.pem');
  writeFileSync(caFile, await edgeRoot(SCRIPT.admin));
  await run('bash', [join(ROOT, 'bench/script-baseline.sh'), '--cleanup']);

  /**
   * POST → the installed site's title through Berth's edge; the job's steps for the record.
   * The bench asks only the API while the job runs: a request to the site before its
   * container's network is up holds its later connections 0.3-0.5 s (bench.ts, berthOneSite),
   * and the script's site is not asked while the script runs either. The job ends once the
   * edge serves the site (its last step); the title is then read once through the edge, and
   * only if it is not there yet is it waited for, and the wait counted.
   */
  const berthSite = async (key: string, slug: string, name: string) => {
    const wanted = `Bench ${slug} ${name}`;
    const wall0 = Date.now();
    const t0 = now();
    const created = await api.must('POST', '/v1/sites', key, {
      name,
      wordpress: { title: wanted, adminPassword: randomBytes(12).toString('hex') },
    });
    const hostname = `${name}-${slug}.${BASE}`;
    let job: { status: string; error?: string; finishedAt?: string; steps: Step[] };
    for (;;) {
      job = (await api.must('GET', `/v1/jobs/${created.body.job.id}`, key)).body;
      if (job.status === 'SUCCEEDED') break;
      if (job.status === 'FAILED') throw new Error(`site ${hostname} failed: ${job.error}`);
      if (now() - t0 > 180_000) throw new Error(`site ${hostname} not served within 180 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    let waited = false;
    while ((await title(root, hostname)) !== wanted) {
      if (now() - t0 > 180_000) throw new Error(`site ${hostname} not served within 180 s`);
      await new Promise((r) => setTimeout(r, 100));
      waited = true;
    }
    return {
      ms: waited ? now() - t0 : new Date(job.finishedAt as string).getTime() - wall0,
      steps: job.steps,
      posted: wall0,
      finished: new Date(job.finishedAt as string).getTime(),
    };
  };

  const first: number[] = [];
  const second: number[] = [];
  const script: number[] = [];
  const busy: number[] = [];
  let steps: Step[] = [];
  /** The last round's first site: when it was asked for and when its job ended (ms since the epoch, this machine's clock). */
  let ends = { posted: 0, finished: 0 };
  const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
  const quiet = async () => busy.push(await backgroundBusy(berth.pid));
  try {
    for (let r = 0; r <= ROUNDS; r++) {
      const label = r === 0 ? 'warm-up' : `round ${r}`;
      const order = r % 2 === 0 ? ['berth', 'script'] : ['script', 'berth'];
      for (const who of order) {
        await quiet();
        if (who === 'script') {
          const ms = await scriptSite(caFile);
          if (r > 0) script.push(ms);
          log(`${label}: script ${round(ms / 1000, 2)} s`);
          continue;
        }
        const slug = `bs-${randomBytes(3).toString('hex')}`;
        const t = await api.must('POST', '/v1/tenants', ADMIN_KEY, { slug, name: slug, contactEmail: `ops@${slug}.example` });
        const key = (await api.must('POST', `/v1/tenants/${t.body.id}/api-keys`, ADMIN_KEY, {})).body.key as string;
        const one = await berthSite(key, slug, 'one');
        await quiet();
        const two = await berthSite(key, slug, 'two');
        if (r > 0) {
          first.push(one.ms);
          second.push(two.ms);
          steps = one.steps;
          ends = { posted: one.posted, finished: one.finished };
        }
        log(`${label}: Berth, new tenant's first site ${round(one.ms / 1000, 2)} s, second site ${round(two.ms / 1000, 2)} s`);
        // Gone before the next measurement, as the script's objects are: every round starts on the same host.
        if (KEEP_SITES) continue;
        const removal = (await api.must('DELETE', `/v1/tenants/${t.body.id}?force=true`, ADMIN_KEY)).body.job.id as string;
        for (let status = ''; status !== 'SUCCEEDED';) {
          status = (await api.must('GET', `/v1/jobs/${removal}`, ADMIN_KEY)).body.status as string;
          if (status === 'FAILED') throw new Error(`removing tenant ${slug} failed`);
          await new Promise((res) => setTimeout(res, 200));
        }
      }
    }
  } finally {
    await berth.stop();
    await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
    await run('bash', [join(ROOT, 'bench/script-baseline.sh'), '--cleanup']);
    await emptyRedis();
  }
  const machine = await machineInfo(docker);
  const sec = (ms: number) => round(ms / 1000, 2);
  const s = (xs: number[]) =>
    `median ${sec(median(xs))} s (min ${sec(Math.min(...xs))}, max ${sec(Math.max(...xs))}; ${xs.map(sec).join(', ')})`;
  const ratio = round(median(first) / median(script), 2);
  const at = (iso: string) => new Date(iso).getTime();
  const t0 = steps.length ? at(steps[0].startedAt) : 0;
  process.stdout.write(
    [
      `One site like for like, real images, installed, through the edge (HTTPS, the installed site's title): ${ROUNDS} rounds after a warm-up${
        KEEP_SITES ? ", every round's sites kept until the end (BENCH_KEEP_SITES=1)" : ', each round removing the sites of the round before'
      }`,
      `machine: ${machine.cores} cores ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}, Docker ${machine.dockerEngine}, Node ${machine.node}`,
      `machine busy before each measurement (other work than Berth): median ${median(busy)} % (max ${Math.max(...busy)} %)`,
      `Berth, a new tenant's first site, POST → served: ${s(first)}`,
      `script (bench/script-baseline.sh), the same work:  ${s(script)}`,
      `Berth / script: ${ratio}   goal ≤ 0.6   ${ratio <= 0.6 ? 'met' : 'NOT MET'}`,
      `Berth, a second site of the same tenant: ${s(second)}   goal ≤ 8 s`,
      `the last round's first site, step by step (s from the job's first step: start, duration):`,
      `  (the POST ${sec(t0 - ends.posted).toFixed(2)} s before its first step; the job ended ${sec(
        ends.finished - Math.max(...steps.map((st) => at(st.finishedAt ?? st.startedAt))),
      ).toFixed(2)} s after its last step)`,
      ...steps.map(
        (st) =>
          `  ${st.name.padEnd(40)} ${sec(at(st.startedAt) - t0)
            .toFixed(2)
            .padStart(6)} ${
            st.finishedAt
              ? sec(at(st.finishedAt) - at(st.startedAt))
                  .toFixed(2)
                  .padStart(6)
              : '     -'
          }`,
      ),
      '',
    ].join('\n'),
  );
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
