/**
 * Backups at the size of a real customer's site (issue 3/6): a WordPress site with 5,000 posts
 * and 200 MB of uploads, backed up, backed up again with nothing changed, restored, cloned and
 * downloaded, through Berth's API, with real restic, the real images (berth/wordpress:6.1,
 * berth/mariadb:10.11) and Berth from dist/main.js. Each figure is what a caller waits: from
 * the request to its job's success.
 *
 * Berth's memory: its resident size is sampled every 50 ms during each operation. The same
 * operations on an empty WordPress site come first, so the peak on 200 MB can be compared with
 * the peak on a few hundred KB: streamed end to end, they are the same within noise.
 *
 * Goals: first backup ≤ 30 s; a second backup with nothing changed ≤ 5 s, adding under 1 MB to
 * the repository; restore ≤ 45 s; clone ≤ 45 s; memory flat.
 *
 * Run by bench/backups.sh (`npm run bench:backups`, and at the end of `npm run bench`).
 * Options (environment): BENCH_BACKUP_UPLOADS_MB (200), BENCH_BACKUP_POSTS (5000).
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import { Client } from 'pg';
import { Api, emptyDatabase, machineInfo, now, removeLabelled, round, rssMiB, startBerth, type BerthProcess } from './support';

const ROOT = resolve(__dirname, '../..');
const OUT = join(ROOT, 'bench', '.out');
const RESULTS = join(ROOT, 'bench', 'results');
const INSTANCE = 'bench-backups';
const WORK = '/var/tmp/berth-bench-backups';
const REPOSITORY = join(WORK, 'repository');
const UPLOADS_MB = Number(process.env.BENCH_BACKUP_UPLOADS_MB ?? 200);
const POSTS = Number(process.env.BENCH_BACKUP_POSTS ?? 5000);
const ADMIN_KEY = `berth_bench-${randomBytes(24).toString('base64url')}`;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const log = (m: string) => process.stderr.write(`[bench:backups] ${m}\n`);
const s = (ms: number) => round(ms / 1000, 1);

/** Bytes the repository takes on disk. */
const repoBytes = () => Number(execFileSync('du', ['-sb', REPOSITORY], { encoding: 'utf8' }).split('\t')[0]);

/** Runs `fn` while sampling the process's resident size; the peak, MiB. */
async function sampled<T>(pid: number, fn: () => Promise<T>): Promise<{ value: T; ms: number; peakMiB: number; beforeMiB: number }> {
  const beforeMiB = rssMiB(pid);
  let peakMiB = beforeMiB;
  const timer = setInterval(() => (peakMiB = Math.max(peakMiB, rssMiB(pid))), 50);
  const t0 = now();
  try {
    const value = await fn();
    return { value, ms: now() - t0, peakMiB: Math.max(peakMiB, rssMiB(pid)), beforeMiB };
  } finally {
    clearInterval(timer);
  }
}

async function exec(container: string, cmd: string[], user = 'root', env: string[] = []): Promise<string> {
  const e = await docker.getContainer(container).exec({ Cmd: cmd, User: user, Env: env, AttachStdout: true, AttachStderr: true });
  const stream = await e.start({});
  const chunks: Buffer[] = [];
  const out = { write: (c: Buffer) => chunks.push(c) } as unknown as NodeJS.WritableStream;
  docker.modem.demuxStream(stream, out, out);
  await new Promise((r) => stream.on('end', r));
  const info = await e.inspect();
  const text = Buffer.concat(chunks).toString();
  if (info.ExitCode !== 0) throw new Error(`${cmd.join(' ')} in ${container} exited ${info.ExitCode}: ${text.slice(-2000)}`);
  return text;
}

class Bench {
  private readonly api: Api;
  private key = '';
  private tenant = { id: '', slug: '' };
  constructor(
    private readonly berth: BerthProcess,
    private readonly db: Client,
  ) {
    this.api = new Api(berth.url);
  }

  async tenantAndKey(): Promise<void> {
    const slug = `bb${randomBytes(3).toString('hex')}`;
    const t = await this.api.must('POST', '/v1/tenants', ADMIN_KEY, { slug, name: slug, contactEmail: `ops@${slug}.example` });
    this.tenant = { id: t.body.id, slug };
    this.key = (await this.api.must('POST', `/v1/tenants/${t.body.id}/api-keys`, ADMIN_KEY, {})).body.key as string;
  }

  /** Waits for the job; throws when it fails. */
  async job(id: string, limitMs = 600_000): Promise<void> {
    const t0 = now();
    for (;;) {
      const job = (await this.api.must('GET', `/v1/jobs/${id}`, this.key)).body;
      if (job.status === 'SUCCEEDED') return;
      if (job.status === 'FAILED' || job.status === 'CANCELLED') throw new Error(`job ${id} (${job.kind}) ${job.status}: ${job.error}`);
      if (now() - t0 > limitMs) throw new Error(`job ${id} not done within ${limitMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async site(name: string): Promise<{ id: string; wp: string; dbc: string; dbName: string }> {
    const created = await this.api.must('POST', '/v1/sites', this.key, { name, wordpress: { title: `Bench ${name}` } });
    await this.job(created.body.job.id);
    const id = created.body.site.id as string;
    const { dbName } = (await this.db.query('SELECT "dbName" FROM "Site" WHERE id = $1', [id])).rows[0] as { dbName: string };
    return { id, wp: `berth-${INSTANCE}_wp_${this.tenant.slug}_${name}`, dbc: `berth-${INSTANCE}_db_${this.tenant.slug}`, dbName };
  }

  sql(site: { dbc: string; dbName: string }, query: string): Promise<string> {
    return exec(site.dbc, ['sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 -N ${site.dbName} -e "$Q"`], 'root', [
      `Q=${query}`,
    ]);
  }

  /** POSTs, then waits for the job the answer names. */
  async request(path: string, body?: unknown): Promise<{ id?: string; backupId?: string; siteId?: string }> {
    const r = await this.api.must('POST', path, this.key, body);
    await this.job(r.body.job.id);
    return { backupId: r.body.backup?.id, siteId: r.body.site?.id };
  }

  backup(siteId: string) {
    return this.request(`/v1/sites/${siteId}/backups`);
  }

  async backupRow(id: string): Promise<{ sizeBytes: number; addedBytes: number; files: number | null }> {
    return (await this.api.must('GET', `/v1/backups/${id}`, this.key)).body;
  }

  /** Streams the backup's .tar.gz; its size in bytes. */
  async download(id: string): Promise<number> {
    const res = await fetch(`${this.api.base}/v1/backups/${id}/download`, { headers: { Authorization: `Bearer ${this.key}` } });
    if (res.status !== 200 || !res.body) throw new Error(`download: HTTP ${res.status}`);
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    return bytes;
  }
}

interface Row {
  what: string;
  small: { ms: number; peakMiB: number };
  big: { ms: number; peakMiB: number; beforeMiB: number };
  goalS?: number;
  extra?: string;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  mkdirSync(RESULTS, { recursive: true });
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const dbUrl = await emptyDatabase(process.env.DATABASE_URL as string, 'berth_bench_backups');
  await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
  const berth = await startBerth(
    ROOT,
    {
      ...process.env,
      NODE_ENV: 'production',
      PORT: '0',
      DATABASE_URL: dbUrl,
      REDIS_URL: `${(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').replace(/\/\d*$/, '')}/15`,
      BERTH_INSTANCE: INSTANCE,
      BERTH_ADMIN_KEY: ADMIN_KEY,
      BERTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      BERTH_WORDPRESS_IMAGE: 'berth/wordpress:6.1',
      BERTH_DB_IMAGE: 'berth/mariadb:10.11',
      BERTH_SUBNET_POOL: '10.93.0.0/16',
      BERTH_PORT_RANGE: '29500-29599',
      BERTH_EDGE: 'none',
      BERTH_BACKUP_REPOSITORY: REPOSITORY,
      BERTH_BACKUP_STAGING_DIR: join(WORK, 'staging'),
      BERTH_BACKUP_PASSWORD: randomBytes(18).toString('base64url'),
      // Only the backups this bench asks for.
      BERTH_BACKUP_SCHEDULER_MS: '86400000',
      BERTH_LOG_LEVEL: 'warn',
    },
    join(OUT, 'backups-berth.log'),
    join(OUT, 'backups-berth.pid'),
  );
  const db = new Client({ connectionString: dbUrl });
  await db.connect();
  const b = new Bench(berth, db);
  const rows: Row[] = [];
  const repo = { afterFirst: 0, afterSecond: 0, addedSecond: 0 };
  let downloadBytes = 0;
  try {
    await b.tenantAndKey();
    log('provisioning two sites (real images): an empty WordPress and the big one');
    const small = await b.site('small');
    const big = await b.site('big');

    log(`filling the big site: ${POSTS} posts, ${UPLOADS_MB} MB of uploads (random bytes, as photos are: incompressible)`);
    const t0 = now();
    await b.sql(
      big,
      `INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_type, guid)
       SELECT 1, NOW() - INTERVAL seq MINUTE, UTC_TIMESTAMP() - INTERVAL seq MINUTE,
              CONCAT('<p>Post ', seq, ' ', REPEAT(CONCAT(MD5(seq), ' lorem ipsum dolor sit amet '), 40), '</p>'),
              CONCAT('Bench post ', seq), '', 'publish', CONCAT('bench-post-', seq), '', '', NOW(), UTC_TIMESTAMP(), '', 'post',
              CONCAT('http://bench.example/?p=', seq)
       FROM seq_1_to_${POSTS}`,
    );
    await exec(
      big.wp,
      [
        'sh',
        '-c',
        `d=/var/www/html/wp-content/uploads/2026/12; mkdir -p $d; for i in $(seq 1 ${UPLOADS_MB}); do head -c 1048576 /dev/urandom > $d/photo-$i.jpg; done`,
      ],
      '33:33',
    );
    const posts = Number((await b.sql(big, "SELECT COUNT(*) FROM wp_posts WHERE post_type = 'post'")).trim());
    const du = (await exec(big.wp, ['du', '-sm', '/var/www/html'])).split('\t')[0];
    log(`filled in ${s(now() - t0)} s: ${posts} posts, ${du} MB in the WordPress volume`);

    const pid = berth.pid;
    const measure = async (
      what: string,
      goalS: number | undefined,
      onSmall: () => Promise<unknown>,
      onBig: () => Promise<string | void>,
    ) => {
      const sm = await sampled(pid, onSmall);
      const bg = await sampled(pid, onBig);
      rows.push({ what, small: sm, big: bg, goalS, extra: bg.value || undefined });
      log(`${what}: empty site ${s(sm.ms)} s, big site ${s(bg.ms)} s (Berth RSS peak ${round(sm.peakMiB)} / ${round(bg.peakMiB)} MiB)`);
    };

    let smallFirst = '';
    let bigFirst = '';
    await measure(
      'first backup',
      30,
      async () => (smallFirst = (await b.backup(small.id)).backupId!),
      async () => {
        bigFirst = (await b.backup(big.id)).backupId!;
        repo.afterFirst = repoBytes();
        const row = await b.backupRow(bigFirst);
        return `snapshot ${round(row.sizeBytes / 1048576)} MiB, repository ${round(repo.afterFirst / 1048576)} MiB`;
      },
    );
    await measure(
      'second backup, nothing changed',
      5,
      () => b.backup(small.id),
      async () => {
        const id = (await b.backup(big.id)).backupId!;
        repo.afterSecond = repoBytes();
        repo.addedSecond = repo.afterSecond - repo.afterFirst;
        const row = await b.backupRow(id);
        return `repository grew ${round(repo.addedSecond / 1024)} KiB (restic: ${round(row.addedBytes / 1024)} KiB added)`;
      },
    );
    await measure(
      'restore (checkpoint first)',
      45,
      () => b.request(`/v1/sites/${small.id}/restore`, { backupId: smallFirst }),
      async () => {
        await b.request(`/v1/sites/${big.id}/restore`, { backupId: bigFirst });
        const n = Number((await b.sql(big, "SELECT COUNT(*) FROM wp_posts WHERE post_type = 'post'")).trim());
        const files = (await exec(big.wp, ['sh', '-c', 'ls /var/www/html/wp-content/uploads/2026/12 | wc -l'])).trim();
        if (n !== posts) throw new Error(`restored ${n} posts, expected ${posts}`);
        return `${n} posts and ${files} uploads back`;
      },
    );
    await measure(
      'clone (its own database, URLs moved)',
      45,
      () => b.request(`/v1/sites/${small.id}/clone`, { name: 'small-copy', backupId: smallFirst }),
      async () => {
        const { siteId } = await b.request(`/v1/sites/${big.id}/clone`, { name: 'big-copy', backupId: bigFirst });
        const row = (await db.query('SELECT "dbName" FROM "Site" WHERE id = $1', [siteId])).rows[0] as { dbName: string };
        const n = Number(
          (await b.sql({ dbc: big.dbc, dbName: row.dbName }, "SELECT COUNT(*) FROM wp_posts WHERE post_type = 'post'")).trim(),
        );
        if (n !== posts) throw new Error(`the clone has ${n} posts, expected ${posts}`);
        return `the clone has ${n} posts`;
      },
    );
    await measure(
      'download (.tar.gz, streamed)',
      undefined,
      () => b.download(smallFirst),
      async () => {
        downloadBytes = await b.download(bigFirst);
        return `${round(downloadBytes / 1048576)} MiB`;
      },
    );
  } finally {
    await db.end();
    await berth.stop();
    await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
    rmSync(WORK, { recursive: true, force: true });
  }

  const machine = await machineInfo(docker);
  const lines = [
    `Backups of a site with ${POSTS} posts and ${UPLOADS_MB} MB of uploads (real restic, real images, local repository), beside an empty WordPress site`,
    `machine: ${machine.cores} cores ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}, Docker ${machine.dockerEngine}`,
    '',
    `${'operation'.padEnd(38)}${'empty site'.padStart(12)}${'big site'.padStart(12)}${'goal'.padStart(9)}   Berth RSS peak (empty / big)   notes`,
    ...rows.map((r) => {
      const ok = r.goalS === undefined ? '' : r.big.ms / 1000 <= r.goalS ? ' ok' : ' MISSED';
      return `${r.what.padEnd(38)}${`${s(r.small.ms)} s`.padStart(12)}${`${s(r.big.ms)} s`.padStart(12)}${(r.goalS ? `≤ ${r.goalS} s` : '').padStart(9)}${ok.padEnd(8)}${`${round(r.small.peakMiB)} / ${round(r.big.peakMiB)} MiB`.padEnd(24)}${r.extra ?? ''}`;
    }),
    '',
    `second backup with nothing changed added ${round(repo.addedSecond / 1024)} KiB to the repository (goal < 1024 KiB): ${repo.addedSecond < 1048576 ? 'ok' : 'MISSED'}`,
    `Berth's peak resident size over all operations: empty site ${round(Math.max(...rows.map((r) => r.small.peakMiB)))} MiB, big site ${round(Math.max(...rows.map((r) => r.big.peakMiB)))} MiB`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  writeFileSync(
    join(RESULTS, 'backups-latest.json'),
    `${JSON.stringify({ at: new Date().toISOString(), machine, posts: POSTS, uploadsMB: UPLOADS_MB, rows, repo, downloadBytes }, null, 2)}\n`,
  );
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
