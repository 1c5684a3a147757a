/**
 * How long a customer waits for a site: from POST /v1/sites until its platform hostname
 * answers over HTTPS through the edge with the installed WordPress (its title on the front
 * page). Real images (berth/wordpress:6.1, berth/mariadb:10.11), a real edge (its own Caddy),
 * Berth from dist/main.js. Measured for a new tenant's first site (its database server is
 * created too) and for a second site of the same tenant, `BENCH_ROUNDS` times (default 3).
 *
 * Run by bench/installed-site.sh (`npm run bench:site`), which sets up like npm test and
 * starts the bench's own Caddy (admin 127.0.0.1:2398, ports 19580/19543).
 * Goals (issue 2/6): first site ≤ 15 s, second ≤ 8 s.
 */
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import { Client } from 'pg';
import { Api, machineInfo, median, now, removeLabelled, round, startBerth } from './support';

const ROOT = resolve(__dirname, '../..');
const OUT = join(ROOT, 'bench', '.out');
const INSTANCE = 'bench-site';
const HTTP_PORT = 19580;
const HTTPS_PORT = 19543;
const BASE = 'bench-site.berth.localhost';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ADMIN_KEY = `berth_bench-${randomBytes(24).toString('base64url')}`;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });

/** The front page's title through the edge, trusting its CA; undefined while it does not answer 200. */
function title(root: string, hostname: string): Promise<string | undefined> {
  return new Promise((done) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: HTTPS_PORT,
        path: '/',
        servername: hostname,
        headers: { host: `${hostname}:${HTTPS_PORT}` },
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

async function main(): Promise<void> {
  const adminDb = new Client({ connectionString: process.env.DATABASE_URL });
  await adminDb.connect();
  await adminDb.query('DROP DATABASE IF EXISTS berth_bench_site WITH (FORCE)');
  await adminDb.query('CREATE DATABASE berth_bench_site');
  await adminDb.end();
  const dbUrl = new URL(process.env.DATABASE_URL as string);
  dbUrl.pathname = '/berth_bench_site';
  await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
  const berth = await startBerth(
    ROOT,
    {
      ...process.env,
      NODE_ENV: 'production',
      PORT: '0',
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL: `${(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').replace(/\/\d*$/, '')}/13`,
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
    },
    join(OUT, 'installed-site-berth.log'),
    join(OUT, 'installed-site-berth.pid'),
  );
  const api = new Api(berth.url);
  const root = ((await (await fetch(`${process.env.BERTH_EDGE_ADMIN_URL}/pki/ca/local`)).json()) as { root_certificate: string })
    .root_certificate;
  const first: number[] = [];
  const second: number[] = [];
  try {
    for (let round_ = 0; round_ < ROUNDS; round_++) {
      const slug = `bs-${randomBytes(3).toString('hex')}`;
      const t = await api.must('POST', '/v1/tenants', ADMIN_KEY, { slug, name: slug, contactEmail: `ops@${slug}.example` });
      const key = (await api.must('POST', `/v1/tenants/${t.body.id}/api-keys`, ADMIN_KEY, {})).body.key as string;
      for (const [name, into] of [
        ['one', first],
        ['two', second],
      ] as const) {
        const wanted = `Bench ${slug} ${name}`;
        const t0 = now();
        const created = await api.must('POST', '/v1/sites', key, {
          name,
          wordpress: { title: wanted, adminPassword: randomBytes(12).toString('hex') },
        });
        const hostname = `${name}-${slug}.${BASE}`;
        for (;;) {
          if ((await title(root, hostname)) === wanted) break;
          const job = (await api.must('GET', `/v1/jobs/${created.body.job.id}`, key)).body;
          if (job.status === 'FAILED') throw new Error(`site ${hostname} failed: ${job.error}`);
          if (now() - t0 > 180_000) throw new Error(`site ${hostname} not served within 180 s`);
          await new Promise((r) => setTimeout(r, 100));
        }
        into.push(now() - t0);
        process.stderr.write(
          `[bench] round ${round_ + 1}: ${name === 'one' ? "new tenant's first site" : 'second site'} ${round((now() - t0) / 1000, 1)} s\n`,
        );
      }
    }
  } finally {
    await berth.stop();
    await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
  }
  const machine = await machineInfo(docker);
  const s = (xs: number[]) => `median ${round(median(xs) / 1000, 1)} s (${xs.map((x) => round(x / 1000, 1)).join(', ')})`;
  process.stdout.write(
    [
      `Installed site answering HTTPS on its platform hostname (real images, real edge), ${ROUNDS} rounds`,
      `machine: ${machine.cores} cores ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}, Docker ${machine.dockerEngine}`,
      `new tenant's first site: ${s(first)}   goal ≤ 15 s`,
      `second site, same tenant: ${s(second)}   goal ≤ 8 s`,
      '',
    ].join('\n'),
  );
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
