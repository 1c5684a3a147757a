import { execFile, spawnSync } from 'node:child_process';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { auth, createTenant, exec, gql, startHarness, waitForJob, type Harness } from './harness';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { BACKUP_PASSWORD, BACKUP_REPOSITORY, testNames, testRedisUrl } from './env';
import { JobName, SITES_QUEUE } from '../src/jobs/job.types';
import { provision, removeSuiteObjects, sleep } from './suite-helpers';
import { eventually } from './receivers';
import { edgeFetch, edgeRoot } from './edge-client';

/**
 * Backups and restores end to end with real restic, the real WordPress image and MariaDB: a
 * site's posts and uploads come back from a backup, the checkpoint a restore takes holds what
 * it replaced, a backup taken while a writer inserts holds only whole transactions, a restore
 * that fails midway is rolled back, and another tenant can reach none of it. The tests run in
 * order and share the sites.
 */

const run = promisify(execFile);
let h: Harness;
let a: { tenant: { id: string; slug: string }; key: string };
let b: { tenant: { id: string; slug: string }; key: string };
let site: { id: string; name: string };
let other: { id: string; name: string };
let dbName: string;
let firstBackup: string;
let root: string;
/** The clone of `site`, used as its staging copy. */
let staging: { id: string; dbName: string; publicUrl: string };
/** The site deleted and brought back, and the backup it was brought back from. */
let deletedSite: { id: string; backupId: string };

const tag = randomBytes(4).toString('hex');
const title = (n: number) => `Berth backup post ${n} ${tag}`;
const upload = `/var/www/html/wp-content/uploads/berth-${tag}.txt`;
const uploadBody = `uploaded ${tag} ${'x'.repeat(5000)}`;
const cloneDomain = `shop-copy-${tag}.example`;

beforeAll(async () => {
  h = await startHarness({
    BERTH_WORDPRESS_IMAGE: 'berth/wordpress:6.1',
    BERTH_BACKUP_SCHEDULER_MS: '1000',
    BERTH_BACKUP_DOWNLOAD_IDLE_MS: '3000',
  });
  a = await createTenant(h);
  b = await createTenant(h);
  // Both sites at once: their jobs run side by side.
  [site, other] = await Promise.all([
    provision(h, a.key, { name: 'shop', wordpress: { title: `Shop ${tag}` } }),
    provision(h, b.key, { name: 'blog', wordpress: { title: `Blog ${tag}` } }),
  ]);
  root = await edgeRoot();
  dbName = (await h.db.query('SELECT "dbName" FROM "Site" WHERE id = $1', [site.id])).rows[0].dbName as string;
}, 300_000);
afterAll(async () => {
  await h?.stop();
  await removeSuiteObjects();
});

/** SQL on the site's database, as root; the output's rows (tab-separated, no header). */
async function sql(query: string): Promise<string> {
  const res = await exec(
    h.docker,
    testNames.dbContainer(a.tenant.slug),
    ['sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 -N ${dbName} -e "$BERTH_SQL"`],
    undefined,
    [`BERTH_SQL=${query}`],
  );
  if (res.code !== 0) throw new Error(`SQL failed: ${res.out}`);
  return res.out.trim();
}

const addPost = (n: number) =>
  sql(
    `INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_type)
     VALUES (1, NOW() - INTERVAL 1 HOUR, UTC_TIMESTAMP() - INTERVAL 1 HOUR, 'Body ${n}', '${title(n)}', '', 'publish', 'berth-post-${n}-${tag}', '', '', NOW(), UTC_TIMESTAMP(), '', 'post')`,
  );
const postCount = async (n: number) => Number(await sql(`SELECT COUNT(*) FROM wp_posts WHERE post_title = '${title(n)}'`));

const wp = () => testNames.wpContainer(a.tenant.slug, site.name);
const readUpload = () => exec(h.docker, wp(), ['sh', '-c', `stat -c '%u:%g' ${upload} && cat ${upload}`]);

/** The AUTH_KEY a site's wp-config.php holds, with the file's owner and mode. */
async function authKey(container: string): Promise<string> {
  const res = await exec(h.docker, container, [
    'sh',
    '-c',
    `stat -c '%u:%g %a' /var/www/html/wp-config.php && grep -o "'WORDPRESS_AUTH_KEY', *'[0-9a-f]*'" /var/www/html/wp-config.php`,
  ]);
  expect(res.code).toBe(0);
  const [owner, key] = res.out.trim().split('\n');
  expect(owner).toBe('33:33 640');
  expect(key).toMatch(/'[0-9a-f]{64}'$/);
  return key;
}

/** The site's front page, as its visitors get it: at its public URL, through the edge. */
async function frontPage(): Promise<{ status: number; body: string }> {
  const view = await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key));
  const res = await edgeFetch(root, view.body.publicUrl as string);
  return { status: res.status, body: await res.text() };
}

/** restic on the suite's repository, for what Berth's API does not show: a snapshot's content. */
const restic = (...args: string[]) =>
  run('restic', args, {
    env: { ...process.env, RESTIC_REPOSITORY: BACKUP_REPOSITORY, RESTIC_PASSWORD: BACKUP_PASSWORD },
    maxBuffer: 256e6,
  });

async function backUp(key = a.key): Promise<{ id: string; snapshotId: string; tables: number; kind: string }> {
  const res = await h.http.post(`/v1/sites/${site.id}/backups`).set(auth(key));
  expect(res.status).toBe(202);
  expect(res.body.backup.status).toBe('PENDING');
  const job = await waitForJob(h, key, res.body.job.id);
  expect(job).toMatchObject({ status: 'SUCCEEDED', kind: 'BACKUP' });
  const got = await h.http.get(`/v1/backups/${res.body.backup.id}`).set(auth(key));
  expect(got.status).toBe(200);
  return got.body;
}

async function restore(body: Record<string, unknown>) {
  const res = await h.http.post(`/v1/sites/${site.id}/restore`).set(auth(a.key)).send(body);
  expect(res.status).toBe(202);
  return waitForJob(h, a.key, res.body.job.id, 300_000);
}

it('backs up a site: one snapshot holding the dump and the files, with versions and sizes recorded', async () => {
  await addPost(1);
  const put = await exec(h.docker, wp(), ['sh', '-c', `printf %s "$BODY" > ${upload}`], '33:33', [`BODY=${uploadBody}`]);
  expect(put.code).toBe(0);

  const backup = await backUp();
  firstBackup = backup.id;
  expect(backup).toMatchObject({
    status: 'SUCCEEDED',
    kind: 'MANUAL',
    siteId: site.id,
    tenantId: a.tenant.id,
    image: 'berth/wordpress:6.1',
  });
  expect(backup.tables).toBeGreaterThanOrEqual(12);
  expect((backup as unknown as { wordpressVersion: string }).wordpressVersion).toMatch(/^6\.1/);
  expect((backup as unknown as { sizeBytes: number }).sizeBytes).toBeGreaterThan(1e6);

  // restic holds it: tagged with the tenant and the site, the dump and the upload inside.
  const snapshots = JSON.parse((await restic('snapshots', '--json', '--tag', `site:${site.id}`)).stdout) as {
    id: string;
    tags: string[];
  }[];
  expect(snapshots.map((s) => s.id)).toContain(backup.snapshotId);
  expect(snapshots.find((s) => s.id === backup.snapshotId)?.tags.sort()).toEqual([`site:${site.id}`, `tenant:${a.tenant.id}`].sort());
  expect((await restic('dump', backup.snapshotId, '/database.sql')).stdout).toContain(title(1));
  expect((await restic('dump', backup.snapshotId, `/files/wp-content/uploads/berth-${tag}.txt`)).stdout).toBe(uploadBody);

  // Listed under the site, newest first; an event says so.
  const list = await h.http.get(`/v1/sites/${site.id}/backups`).set(auth(a.key));
  expect(list.body.map((x: { id: string }) => x.id)).toEqual([backup.id]);
  const events = await h.http.get(`/v1/sites/${site.id}/events`).set(auth(a.key));
  expect(events.body.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['backup.requested', 'backup.succeeded']));
});

it('downloads a backup as a .tar.gz holding the dump and the files, streamed', async () => {
  const res = await fetch(`${h.berth.url}/v1/backups/${firstBackup}/download`, { headers: auth(a.key) });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('application/gzip');
  const archive = Buffer.from(await res.arrayBuffer());
  expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="?shop-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}\.tar\.gz"?$/);
  const list = spawnSync('tar', ['-tz'], { input: archive, encoding: 'latin1', maxBuffer: 256e6 });
  expect(list.status).toBe(0);
  expect(list.stdout.split('\n')).toEqual(
    expect.arrayContaining(['database.sql', 'files/wp-includes/version.php', `files/wp-content/uploads/berth-${tag}.txt`]),
  );
  const read = (path: string) => spawnSync('tar', ['-xzO', path], { input: archive, encoding: 'utf8', maxBuffer: 256e6 }).stdout;
  expect(read('database.sql')).toContain(title(1));
  expect(read(`files/wp-content/uploads/berth-${tag}.txt`)).toBe(uploadBody);
  // A client that stops reading is cut off once idle (3 s here): restic ends and its lock on
  // the repository goes with it. The control: the lock is there while the download is under way.
  const locks = async () => (await restic('list', 'locks', '--no-lock')).stdout.trim().split('\n').filter(Boolean).length;
  await eventually(async () => (await locks()) === 0, 'no lock before the download');
  const stalled = await new Promise<IncomingMessage>((resolve, reject) =>
    httpGet(`${h.berth.url}/v1/backups/${firstBackup}/download`, { headers: auth(a.key) }, resolve).on('error', reject),
  );
  expect(stalled.statusCode).toBe(200);
  stalled.once('data', () => stalled.pause());
  await eventually(async () => (await locks()) > 0, "restic's lock while the download runs", 10_000);
  await eventually(async () => (await locks()) === 0, 'the lock gone with the idle download', 30_000);
  // Cut, not finished: read on, the answer ends short of a whole archive.
  const whole = new Promise<boolean>((resolve) => {
    stalled.on('error', () => undefined);
    stalled.on('close', () => resolve(stalled.complete));
  });
  stalled.resume();
  expect(await whole).toBe(false);

  // Another tenant's key: as if the backup did not exist.
  const other = await fetch(`${h.berth.url}/v1/backups/${firstBackup}/download`, { headers: auth(b.key) });
  expect(other.status).toBe(404);
  expect(((await other.json()) as { code: string }).code).toBe('BACKUP_NOT_FOUND');
});

it('restores: the first post and the upload are back, the second post is gone, the site answers, and the checkpoint holds the second post', async () => {
  await addPost(2);
  expect(await exec(h.docker, wp(), ['rm', upload], '33:33')).toMatchObject({ code: 0 });
  expect(await postCount(2)).toBe(1);
  expect((await readUpload()).code).not.toBe(0);
  // Positive control: the front page shows the newest post before the restore.
  expect((await frontPage()).body).toContain(title(2));
  const keys = await authKey(wp());

  const job = await restore({ backupId: firstBackup });
  expect(job).toMatchObject({ status: 'SUCCEEDED', kind: 'RESTORE' });
  // Its own backup: its keys stay (a clone's and a push's change, below), so its visitors stay logged in.
  expect(await authKey(wp())).toBe(keys);
  expect(job.steps.map((s) => s.name)).toEqual(
    expect.arrayContaining(['checkpoint of the current state', 'restore database and files from backup', 'check the restored site']),
  );

  expect(await postCount(1)).toBe(1);
  expect(await postCount(2)).toBe(0);
  const file = await readUpload();
  expect(file.code).toBe(0);
  expect(file.out).toBe(`33:33\n${uploadBody}`);
  const page = await frontPage();
  expect(page.status).toBe(200);
  expect(page.body).toContain(title(1));
  expect(page.body).not.toContain(title(2));
  const view = await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key));
  expect(view.body).toMatchObject({ status: 'RUNNING' });

  // The checkpoint: a backup of the site as it was just before, holding the second post.
  const list = (await h.http.get(`/v1/sites/${site.id}/backups`).set(auth(a.key))).body as {
    id: string;
    kind: string;
    snapshotId: string;
    status: string;
  }[];
  const checkpoint = list.find((x) => x.kind === 'CHECKPOINT');
  expect(checkpoint).toMatchObject({ status: 'SUCCEEDED' });
  const dump = (await restic('dump', checkpoint!.snapshotId, '/database.sql')).stdout;
  expect(dump).toContain(title(2));
  await eventually(async () => {
    const events = await h.http.get(`/v1/sites/${site.id}/events`).set(auth(a.key));
    return (events.body as { type: string }[]).some((e) => e.type === 'site.restored') || undefined;
  }, 'a site.restored event');
});

it('a backup taken while a writer keeps inserting restores to whole transactions only', async () => {
  await sql('CREATE TABLE berth_ledger (id INT AUTO_INCREMENT PRIMARY KEY, txn INT NOT NULL) ENGINE=InnoDB');
  // Each transaction inserts two rows; a dump that cut one in half would hold an odd count for it.
  const writer = exec(h.docker, testNames.dbContainer(a.tenant.slug), [
    'sh',
    '-c',
    `i=0; while [ $i -lt 400 ]; do i=$((i+1)); MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 ${dbName} -e "START TRANSACTION; INSERT INTO berth_ledger (txn) VALUES ($i); DO SLEEP(0.01); INSERT INTO berth_ledger (txn) VALUES ($i); COMMIT;" || exit 1; done`,
  ]);
  await eventually(async () => Number(await sql('SELECT COUNT(*) FROM berth_ledger')) > 20 || undefined, 'the writer under way');
  const backup = await backUp();
  const written = await writer;
  expect(written.code).toBe(0);
  expect(Number(await sql('SELECT COUNT(*) FROM berth_ledger'))).toBe(800);

  const job = await restore({ backupId: backup.id, parts: ['database'] });
  expect(job.status).toBe('SUCCEEDED');
  const rows = Number(await sql('SELECT COUNT(*) FROM berth_ledger'));
  // The writer was mid-way when the backup was taken: some rows, not all (the positive control).
  expect(rows).toBeGreaterThan(20);
  expect(rows).toBeLessThan(800);
  expect(Number(await sql('SELECT COUNT(*) FROM (SELECT txn FROM berth_ledger GROUP BY txn HAVING COUNT(*) <> 2) AS torn'))).toBe(0);
});

it('a restore that fails midway is rolled back to its checkpoint, and says so', async () => {
  const backup = await backUp();
  await addPost(3);
  // The snapshot goes behind Berth's back: the restore finds out only after it stopped the site.
  await restic('unlock'); // a lock a killed restic left behind (an earlier run's) is not this test's business
  await restic('forget', backup.snapshotId);

  const job = await restore({ backupId: backup.id });
  expect(job.status).toBe('FAILED');
  expect(job.error).toMatch(/rolled back to checkpoint/);
  expect(job.steps.map((s) => s.name)).toEqual(expect.arrayContaining(['roll back to the checkpoint']));
  expect(await postCount(3)).toBe(1);
  expect((await frontPage()).body).toContain(title(3));
  const view = await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key));
  expect(view.body).toMatchObject({ status: 'RUNNING' });
});

it('refuses bad requests with clear errors, and deletes a backup', async () => {
  const bad = await h.http
    .post(`/v1/sites/${site.id}/restore`)
    .set(auth(a.key))
    .send({ backupId: firstBackup, parts: ['themes'] });
  expect(bad.status).toBe(400);
  expect(bad.body.code).toBe('VALIDATION_FAILED');
  const unknown = await h.http
    .post(`/v1/sites/${site.id}/restore`)
    .set(auth(a.key))
    .send({ backupId: '00000000-0000-4000-8000-000000000000' });
  expect(unknown.status).toBe(404);
  expect(unknown.body.code).toBe('BACKUP_NOT_FOUND');

  // A clone's domain is checked before anything is made: an invalid one, or one in use, leaves no site behind.
  const invalid = await h.http.post(`/v1/sites/${site.id}/clone`).set(auth(a.key)).send({ name: 'shop-bad', domain: 'not a host' });
  expect(invalid.status).toBe(400);
  expect(invalid.body).toMatchObject({ code: 'VALIDATION_FAILED' });
  expect(invalid.body.detail).toMatch(/^domain /);
  const inUse = `taken-${tag}.example`;
  expect((await h.http.post(`/v1/sites/${site.id}/domains`).set(auth(a.key)).send({ hostname: inUse })).status).toBe(201);
  const taken = await h.http.post(`/v1/sites/${site.id}/clone`).set(auth(a.key)).send({ name: 'shop-bad', domain: inUse });
  expect(taken.status).toBe(409);
  expect(taken.body.code).toBe('DOMAIN_TAKEN');
  const names = (await h.http.get('/v1/sites').set(auth(a.key))).body.map((x: { name: string }) => x.name);
  expect(names).toContain('shop');
  expect(names).not.toContain('shop-bad');
  expect((await h.http.delete(`/v1/sites/${site.id}/domains/${inUse}`).set(auth(a.key))).status).toBeLessThan(300);

  const deleted = await h.http.delete(`/v1/backups/${firstBackup}`).set(auth(a.key));
  expect(deleted.status).toBe(200);
  expect(deleted.body.status).toBe('DELETED');
  const snapshot = deleted.body.snapshotId as string;
  const left = JSON.parse((await restic('snapshots', '--json')).stdout) as { id: string }[];
  expect(left.map((s) => s.id)).not.toContain(snapshot);
  const again = await h.http.post(`/v1/sites/${site.id}/restore`).set(auth(a.key)).send({ backupId: firstBackup });
  expect(again.status).toBe(409);
  expect(again.body.code).toBe('BACKUP_NOT_AVAILABLE');
});

/** A PHP-serialized option as plugins keep them: one URL plain, one JSON-escaped, a multi-byte character so byte and character lengths differ. */
const serialized = (origin: string) => {
  const str = (v: string) => `s:${Buffer.byteLength(v)}:"${v}";`;
  const json = JSON.stringify({ u: `${origin}/é` }).replace(/\//g, '\\/');
  return `a:2:{${str('logo')}${str(`${origin}/wp-content/logo-é.png`)}${str('json')}${str(json)}}`;
};
const hex = (v: string) => Buffer.from(v, 'utf8').toString('hex');

it('clones to another hostname: the front page and a serialized option name only the clone; the source is untouched; the clone cannot read the source', async () => {
  const source = (await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key))).body as { publicUrl: string };
  const sourceOrigin = new URL(source.publicUrl).origin;
  await sql(
    `INSERT INTO wp_options (option_name, option_value, autoload) VALUES ('berth_probe', UNHEX('${hex(serialized(sourceOrigin))}'), 'no')`,
  );
  await backUp();

  const res = await h.http.post(`/v1/sites/${site.id}/clone`).set(auth(a.key)).send({ name: 'shop-copy', domain: cloneDomain });
  expect(res.status).toBe(202);
  expect(res.body.site).toMatchObject({ name: 'shop-copy', tenantId: a.tenant.id });
  const job = await waitForJob(h, a.key, res.body.job.id, 300_000);
  expect(job).toMatchObject({ status: 'SUCCEEDED', kind: 'PROVISION' });
  expect(job.steps.map((x) => x.name)).toEqual(
    expect.arrayContaining(['copy database and files from backup', 'move WordPress to its public URL']),
  );
  expect(job.steps.map((x) => x.name)).not.toContain('install WordPress');
  const clone = (await h.http.get(`/v1/sites/${res.body.site.id}`).set(auth(a.key))).body as {
    id: string;
    publicUrl: string;
    status: string;
  };
  expect(clone.status).toBe('RUNNING');
  // Its own keys and salts: a login cookie of the source is worth nothing on the clone.
  expect(await authKey(testNames.wpContainer(a.tenant.slug, 'shop-copy'))).not.toBe(await authKey(wp()));
  const cloneOrigin = new URL(clone.publicUrl).origin;
  expect(cloneOrigin).not.toBe(sourceOrigin);
  // Asked for its own domain: its primary from the start, and where its URLs were moved.
  expect(new URL(clone.publicUrl).hostname).toBe(cloneDomain);
  const domains = await h.http.get(`/v1/sites/${clone.id}/domains`).set(auth(a.key));
  expect(domains.body).toEqual([expect.objectContaining({ hostname: cloneDomain, primary: true })]);

  const page = await edgeFetch(root, clone.publicUrl);
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain(title(1));
  expect(html).toContain(cloneOrigin.replace(/^https?:\/\//, ''));
  expect(html).not.toContain(new URL(sourceOrigin).host);

  const cloneDb = (await h.db.query('SELECT "dbName" FROM "Site" WHERE id = $1', [clone.id])).rows[0].dbName as string;
  staging = { id: clone.id, dbName: cloneDb, publicUrl: clone.publicUrl };
  const option = async (db: string) =>
    (
      await exec(
        h.docker,
        testNames.dbContainer(a.tenant.slug),
        ['sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 -N ${db} -e "$BERTH_SQL"`],
        undefined,
        ["BERTH_SQL=SELECT HEX(option_value) FROM wp_options WHERE option_name = 'berth_probe'"],
      )
    ).out.trim();
  expect(Buffer.from(await option(cloneDb), 'hex').toString('utf8')).toBe(serialized(cloneOrigin));
  // The source is untouched: its option, its home and its front page are its own.
  expect(Buffer.from(await option(dbName), 'hex').toString('utf8')).toBe(serialized(sourceOrigin));
  expect(await sql("SELECT option_value FROM wp_options WHERE option_name = 'home'")).toBe(sourceOrigin);
  expect((await frontPage()).body).toContain(title(1));

  // The clone's own database user reads its database and nothing of the source's.
  const wpEnv = (await h.docker.getContainer(testNames.wpContainer(a.tenant.slug, 'shop-copy')).inspect()).Config.Env;
  const env = (k: string) => wpEnv.find((e) => e.startsWith(`${k}=`))!.slice(k.length + 1);
  const asClone = (query: string) =>
    exec(
      h.docker,
      testNames.dbContainer(a.tenant.slug),
      ['sh', '-c', 'MYSQL_PWD="$P" mariadb -u"$U" -h127.0.0.1 -N -e "$BERTH_SQL"'],
      undefined,
      [`U=${env('WORDPRESS_DB_USER')}`, `P=${env('WORDPRESS_DB_PASSWORD')}`, `BERTH_SQL=${query}`],
    );
  expect(env('WORDPRESS_DB_NAME')).toBe(cloneDb);
  expect(await asClone(`SELECT COUNT(*) FROM ${cloneDb}.wp_posts WHERE post_title = '${title(1)}'`)).toMatchObject({ code: 0, out: '1\n' });
  const denied = await asClone(`SELECT COUNT(*) FROM ${dbName}.wp_posts`);
  expect(denied.code).not.toBe(0);
  expect(denied.out).toMatch(/denied/i);
});

it("pushes staging back to live: live gets a checkpoint, then staging's content at its own URL", async () => {
  const liveOrigin = new URL(((await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key))).body as { publicUrl: string }).publicUrl).origin;
  const stagingHost = new URL(staging.publicUrl).host;
  // A post written on staging only.
  const onStaging = await exec(
    h.docker,
    testNames.dbContainer(a.tenant.slug),
    ['sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 -N ${staging.dbName} -e "$BERTH_SQL"`],
    undefined,
    [
      `BERTH_SQL=INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_type) VALUES (1, NOW(), UTC_TIMESTAMP(), 'Body 4', '${title(4)}', '', 'publish', 'berth-post-4-${tag}', '', '', NOW(), UTC_TIMESTAMP(), '', 'post')`,
    ],
  );
  expect(onStaging.code).toBe(0);
  expect(await postCount(4)).toBe(0);
  const checkpointsBefore = ((await h.http.get(`/v1/sites/${site.id}/backups`).set(auth(a.key))).body as { kind: string }[]).filter(
    (x) => x.kind === 'CHECKPOINT',
  ).length;

  const res = await h.http.post(`/v1/sites/${staging.id}/push`).set(auth(a.key)).send({ targetSiteId: site.id });
  expect(res.status).toBe(202);
  expect(res.body.backup).toMatchObject({ siteId: staging.id, status: 'PENDING' });
  expect(res.body.job).toMatchObject({ siteId: site.id, kind: 'RESTORE' });
  const job = await waitForJob(h, a.key, res.body.job.id, 300_000);
  expect(job.status).toBe('SUCCEEDED');
  // Staging's files came with staging's keys; live has keys of its own again.
  expect(await authKey(wp())).not.toBe(await authKey(testNames.wpContainer(a.tenant.slug, 'shop-copy')));

  expect(await postCount(4)).toBe(1);
  expect(await sql("SELECT option_value FROM wp_options WHERE option_name = 'home'")).toBe(liveOrigin);
  const page = await frontPage();
  expect(page.status).toBe(200);
  expect(page.body).toContain(title(4));
  expect(page.body).not.toContain(stagingHost);
  const after = (await h.http.get(`/v1/sites/${site.id}/backups`).set(auth(a.key))).body as { kind: string }[];
  expect(after.filter((x) => x.kind === 'CHECKPOINT').length).toBe(checkpointsBefore + 1);
  // Staging is untouched: still its own URL.
  const stagingPage = await edgeFetch(root, staging.publicUrl);
  expect(stagingPage.status).toBe(200);
  expect(await stagingPage.text()).toContain(title(4));
});

it('brings a deleted site back into a new site from the backup it kept', async () => {
  const deletedId = other.id;
  const taken = await h.http.post(`/v1/sites/${other.id}/backups`).set(auth(b.key));
  expect((await waitForJob(h, b.key, taken.body.job.id)).status).toBe('SUCCEEDED');
  const del = await h.http.delete(`/v1/sites/${other.id}`).set(auth(b.key));
  expect((await waitForJob(h, b.key, del.body.job.id)).status).toBe('SUCCEEDED');
  // The site is gone; its backup stays, listed under it.
  expect((await h.http.get(`/v1/sites/${other.id}`).set(auth(b.key))).body.status).toBe('DELETED');
  const kept = await h.http.get(`/v1/sites/${other.id}/backups`).set(auth(b.key));
  expect(kept.body.map((x: { id: string; status: string }) => [x.id, x.status])).toContainEqual([taken.body.backup.id, 'SUCCEEDED']);

  const res = await h.http.post(`/v1/sites/${other.id}/clone`).set(auth(b.key)).send({ name: 'blog-back' });
  expect(res.status).toBe(202);
  expect((await waitForJob(h, b.key, res.body.job.id, 300_000)).status).toBe('SUCCEEDED');
  const back = (await h.http.get(`/v1/sites/${res.body.site.id}`).set(auth(b.key))).body as { publicUrl: string; status: string };
  expect(back.status).toBe('RUNNING');
  const page = await edgeFetch(root, back.publicUrl);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain(`Blog ${tag}`);
  // The tenant's live site from now on.
  other = res.body.site;
  deletedSite = { id: deletedId, backupId: taken.body.backup.id };
});

it("a deleted site's backups are listed under its tenant until BERTH_BACKUP_KEEP_DELETED_DAYS after, then forgotten", async () => {
  type Listed = { id: string; siteId: string; status: string; expiresAt: string | null; snapshotId: string };
  const listed = await h.http.get('/v1/backups?deletedSites=true').set(auth(b.key));
  expect(listed.status).toBe(200);
  const mine = (listed.body as Listed[]).find((x) => x.id === deletedSite.backupId)!;
  expect(mine).toMatchObject({ siteId: deletedSite.id, status: 'SUCCEEDED' });
  const { deletedAt } = (await h.db.query('SELECT "deletedAt" FROM "Site" WHERE id = $1', [deletedSite.id])).rows[0] as { deletedAt: Date };
  expect(new Date(mine.expiresAt!).getTime()).toBe(deletedAt.getTime() + 30 * 86_400_000);
  // Only backups of deleted sites, and only the tenant's own.
  expect((listed.body as Listed[]).every((x) => x.siteId === deletedSite.id)).toBe(true);
  expect(((await h.http.get('/v1/backups?deletedSites=true').set(auth(a.key))).body as Listed[]).map((x) => x.id)).not.toContain(mine.id);
  expect((await h.http.get(`/v1/backups?tenantId=${b.tenant.id}`).set(auth(a.key))).body).toEqual([]);
  const bad = await h.http.get('/v1/backups?deletedSites=maybe').set(auth(b.key));
  expect(bad.status).toBe(400);
  // The staging copy goes too (its backups with it, once expired). One clock for both: the
  // staging site deleted 31 days ago, this one 29. The scheduler (every second here) forgets
  // staging's backups, which shows it ran since, and keeps this one.
  const gone = await h.http.delete(`/v1/sites/${staging.id}`).set(auth(a.key));
  expect((await waitForJob(h, a.key, gone.body.job.id)).status).toBe('SUCCEEDED');
  const stagingBackups = (await h.db.query(`SELECT id FROM "Backup" WHERE "siteId" = $1 AND status = 'SUCCEEDED'`, [staging.id])).rows;
  expect(stagingBackups.length).toBeGreaterThan(0);
  await h.db.query(
    `UPDATE "Site" SET "deletedAt" = now() - CASE WHEN id = $1 THEN interval '31 days' ELSE interval '29 days' END WHERE id IN ($1, $2)`,
    [staging.id, deletedSite.id],
  );
  await eventually(async () => {
    const { rows } = await h.db.query(`SELECT count(*)::int AS n FROM "Backup" WHERE "siteId" = $1 AND status = 'SUCCEEDED'`, [staging.id]);
    return rows[0].n === 0;
  }, "the expired staging site's backups forgotten");
  expect((await h.http.get(`/v1/backups/${mine.id}`).set(auth(b.key))).body.status).toBe('SUCCEEDED');
  // Past the period, it is forgotten: the row says DELETED, restic holds it no more, the tenant is told.
  await h.db.query(`UPDATE "Site" SET "deletedAt" = now() - interval '31 days' WHERE id = $1`, [deletedSite.id]);
  await eventually(
    async () => (await h.http.get(`/v1/backups/${mine.id}`).set(auth(b.key))).body.status === 'DELETED',
    'the expired backup forgotten',
  );
  expect((await h.http.get(`/v1/backups/${mine.id}`).set(auth(b.key))).body.expiresAt).toBeNull();
  const left = JSON.parse((await restic('snapshots', '--json')).stdout) as { id: string }[];
  expect(left.map((x) => x.id)).not.toContain(mine.snapshotId);
  const events = await h.db.query(`SELECT message FROM "Event" WHERE type = 'backup.expired' AND "siteId" = $1`, [deletedSite.id]);
  expect(events.rows).toHaveLength(1);
  expect(((await h.http.get('/v1/backups?deletedSites=true').set(auth(b.key))).body as Listed[]).map((x) => x.id)).not.toContain(mine.id);
});

it('scheduled backups: a schedule missed for ten days runs once; retention keeps what the policy keeps; the repository checks out', async () => {
  const policy = () => h.http.get(`/v1/sites/${site.id}/backup-policy`).set(auth(a.key));
  expect((await policy()).body).toMatchObject({ intervalHours: 24, keepDaily: 7, keepWeekly: 4 });
  const tooMany = await h.http
    .put(`/v1/sites/${site.id}/backup-policy`)
    .set(auth(a.key))
    .send({ intervalHours: 24, keepDaily: 500, keepWeekly: 1 });
  expect(tooMany.body.code).toBe('QUOTA_EXCEEDED');
  const none = await h.http
    .put(`/v1/sites/${site.id}/backup-policy`)
    .set(auth(a.key))
    .send({ intervalHours: 24, keepDaily: 0, keepWeekly: 1 });
  expect(none.status).toBe(400);
  const putAt = Date.now();
  const put = await h.http
    .put(`/v1/sites/${site.id}/backup-policy`)
    .set(auth(a.key))
    .send({ intervalHours: 24, keepDaily: 2, keepWeekly: 1 });
  expect(put.status).toBe(200);
  // The scheduler puts the site on the schedule at its own offset within the interval.
  const first = await eventually(
    async () => ((await policy()).body.nextBackupAt as string | null) ?? undefined,
    'the site on the schedule',
  );
  expect(new Date(first).getTime()).toBeGreaterThanOrEqual(putAt - 1000);
  expect(new Date(first).getTime()).toBeLessThan(putAt + 24 * 3_600_000 + 60_000);

  type Row = { id: string; kind: string; status: string; snapshotId: string; jobId: string };
  const rows = async () => (await h.http.get(`/v1/sites/${site.id}/backups`).set(auth(a.key))).body as Row[];
  const scheduledRows = async () => (await rows()).filter((r) => r.kind === 'SCHEDULED');
  /** Workers were down since `daysAgo` days: the due time is that far in the past. */
  async function missedSince(daysAgo: number): Promise<Row> {
    const before = (await scheduledRows()).length;
    await h.db.query(`UPDATE "Site" SET "nextBackupAt" = now() - make_interval(days => $2) WHERE id = $1`, [site.id, daysAgo]);
    const row = await eventually(async () => {
      const now = await scheduledRows();
      return now.length > before ? now[0] : undefined;
    }, 'a scheduled backup');
    expect((await waitForJob(h, a.key, row.jobId)).status).toBe('SUCCEEDED');
    // The schedule moved past now: the missed days are not made up one by one.
    await eventually(
      async () => new Date((await policy()).body.nextBackupAt as string).getTime() > Date.now() || undefined,
      'the next slot',
    );
    expect((await scheduledRows()).length).toBe(before + 1);
    return (await rows()).find((r) => r.id === row.id)!;
  }
  const backdate = (id: string, days: number) =>
    h.db.query(`UPDATE "Backup" SET "createdAt" = now() - make_interval(days => $2) WHERE id = $1`, [id, days]);

  // Retention counts UTC calendar days, from the backups' times and the checkpoints' made
  // earlier today: a midnight between the backdating below and the last run would make the
  // kept days others than the ones asserted. Start only with 10 minutes of the day left.
  const leftToday = 86_400_000 - (Date.now() % 86_400_000);
  if (leftToday < 10 * 60_000) await sleep(leftToday + 1000);
  // The checkpoints the restores above took are today's too, even when they were taken
  // before a midnight (else one would be yesterday's newest, kept instead of run3: CI at
  // 00:0x UTC, 2026-12-06).
  await h.db.query(`UPDATE "Backup" SET "createdAt" = now() WHERE "siteId" = $1 AND kind = 'CHECKPOINT'`, [site.id]);
  const run1 = await missedSince(10);
  await backdate(run1.id, 15);
  const run2 = await missedSince(1);
  await backdate(run2.id, 8);
  const run3 = await missedSince(1);
  await backdate(run3.id, 1);
  const run4 = await missedSince(1);

  // Two days kept (today's newest, yesterday's); the older ones and today's earlier checkpoints forgotten.
  const after = await rows();
  const status = (id: string) => after.find((r) => r.id === id)?.status;
  expect([run1, run2, run3, run4].map((r) => status(r.id))).toEqual(['DELETED', 'DELETED', 'SUCCEEDED', 'SUCCEEDED']);
  const checkpoints = after.filter((r) => r.kind === 'CHECKPOINT');
  expect(checkpoints.length).toBeGreaterThan(0);
  expect(checkpoints.every((r) => r.status === 'DELETED')).toBe(true);
  // Manual backups are not the policy's to forget.
  expect(after.filter((r) => r.kind === 'MANUAL' && r.status === 'SUCCEEDED').length).toBeGreaterThan(0);

  const inRepo = (JSON.parse((await restic('snapshots', '--json', '--tag', `site:${site.id}`)).stdout) as { id: string }[]).map(
    (x) => x.id,
  );
  expect(inRepo).toEqual(expect.arrayContaining([run3.snapshotId, run4.snapshotId]));
  for (const gone of [run1, run2, ...checkpoints]) expect(inRepo).not.toContain(gone.snapshotId);
  await restic('unlock');
  await restic('prune');
  await restic('check');
}, 840_000); // 4 minutes, and up to 10 more waiting out a UTC midnight

it("another tenant can neither list, read, restore nor delete a tenant's backups", async () => {
  const backup = await backUp();
  const asB = auth(b.key);
  expect((await h.http.get(`/v1/backups/${backup.id}`).set(asB)).status).toBe(404);
  expect((await h.http.get(`/v1/sites/${site.id}/backups`).set(asB)).status).toBe(404);
  expect((await h.http.post(`/v1/sites/${site.id}/backups`).set(asB)).status).toBe(404);
  expect((await h.http.post(`/v1/sites/${site.id}/restore`).set(asB).send({ backupId: backup.id })).status).toBe(404);
  expect((await h.http.delete(`/v1/backups/${backup.id}`).set(asB)).status).toBe(404);
  expect((await h.http.get(`/v1/sites/${site.id}/backup-policy`).set(asB)).status).toBe(404);
  const policy = await h.http.put(`/v1/sites/${site.id}/backup-policy`).set(asB).send({ intervalHours: 0, keepDaily: 1, keepWeekly: 0 });
  expect(policy.status).toBe(404);
  expect((await h.http.post(`/v1/sites/${site.id}/clone`).set(asB).send({ name: 'stolen' })).status).toBe(404);
  // Pushing across tenants, either way: no such site.
  expect((await h.http.post(`/v1/sites/${other.id}/push`).set(asB).send({ targetSiteId: site.id })).status).toBe(404);
  expect((await h.http.post(`/v1/sites/${staging.id}/push`).set(auth(a.key)).send({ targetSiteId: other.id })).status).toBe(404);
  // A tenant key cannot clone into another tenant either.
  const elsewhere = await h.http.post(`/v1/sites/${site.id}/clone`).set(auth(a.key)).send({ name: 'moved', tenantId: b.tenant.id });
  expect(elsewhere.status).toBe(404);
  expect(elsewhere.body.code).toBe('TENANT_NOT_FOUND');
  // Its own site, from the other tenant's backup: as if that backup did not exist.
  const cross = await h.http.post(`/v1/sites/${other.id}/restore`).set(asB).send({ backupId: backup.id });
  expect(cross.status).toBe(404);
  expect(cross.body.code).toBe('BACKUP_NOT_FOUND');
  const q = await gql<{ backup: unknown }>(h, b.key, 'query($id: ID!) { backup(id: $id) { id } }', { id: backup.id });
  expect(q.errors?.[0]?.extensions?.code).toBe('BACKUP_NOT_FOUND');
  // Positive control: the owner reads it the same ways, through GraphQL too.
  const own = await gql<{ site: { backups: { id: string }[] } }>(h, a.key, 'query($id: ID!) { site(id: $id) { backups { id status } } }', {
    id: site.id,
  });
  expect(own.data?.site.backups.map((x) => x.id)).toContain(backup.id);
  expect((await h.http.get(`/v1/backups/${backup.id}`).set(auth(a.key))).status).toBe(200);
});

it('registers the backup schedule again when Redis has lost it (flushed, or restarted without its data)', async () => {
  const connection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  const queue = new Queue(SITES_QUEUE, { connection });
  try {
    // Control: the worker registered it at start, and removing it is seen.
    expect(await queue.getJobScheduler(JobName.ScheduleBackups)).toMatchObject({ every: 1000 });
    await queue.removeJobScheduler(JobName.ScheduleBackups);
    expect(await queue.getJobScheduler(JobName.ScheduleBackups)).toBeUndefined();
    // The worker's sweeper (every 15 s here) puts it back, with its interval.
    const back = await eventually(() => queue.getJobScheduler(JobName.ScheduleBackups), 'the backup schedule to be back', 45_000, 500);
    expect(back).toMatchObject({ every: 1000 });
  } finally {
    await queue.close();
    connection.disconnect();
  }
});

it('refuses every request but a deletion on a clone whose copy has not completed (its job would be superseded, and a blank WordPress installed)', async () => {
  await backUp();
  // The tenant's lock held: the clone's job waits in its first step (the tenant's network).
  const redis = new IORedis(testRedisUrl());
  const held = `berth:lock:tenant:${a.tenant.id}`;
  expect(await redis.set(held, 'held-by-the-test', 'PX', 120_000, 'NX')).toBe('OK');
  let clone: { id: string };
  let jobId: string;
  try {
    const res = await h.http.post(`/v1/sites/${site.id}/clone`).set(auth(a.key)).send({ name: 'shop-waiting' });
    expect(res.status).toBe(202);
    clone = res.body.site;
    jobId = res.body.job.id;
    await eventually(
      async () => ((await h.http.get(`/v1/jobs/${jobId}`).set(auth(a.key))).body.status === 'RUNNING' ? true : undefined),
      'the clone to run',
    );
    for (const refused of [
      await h.http.post(`/v1/sites/${clone.id}/stop`).set(auth(a.key)),
      await h.http.post(`/v1/sites/${clone.id}/restart`).set(auth(a.key)),
      await h.http.patch(`/v1/sites/${clone.id}`).set(auth(a.key)).send({ restartPolicy: 'always' }),
    ]) {
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('SITE_BUSY');
    }
  } finally {
    await redis.del(held);
    redis.disconnect();
  }
  const job = await waitForJob(h, a.key, jobId, 300_000);
  expect(job.status).toBe('SUCCEEDED');
  expect(job.steps.map((x) => x.name)).toContain('copy database and files from backup');
  // Control: once its copy is done, the clone is a site like any other.
  const stop = await h.http.post(`/v1/sites/${clone.id}/stop`).set(auth(a.key));
  expect(stop.status).toBe(202);
  expect((await waitForJob(h, a.key, stop.body.job.id)).status).toBe('SUCCEEDED');
  const del = await h.http.delete(`/v1/sites/${clone.id}`).set(auth(a.key));
  expect((await waitForJob(h, a.key, del.body.job.id)).status).toBe('SUCCEEDED');
});

it("never installs a blank WordPress in place of a clone whose copy was cancelled: a new primary domain's repair leaves it FAILED", async () => {
  const redis = new IORedis(testRedisUrl());
  const held = `berth:lock:tenant:${a.tenant.id}`;
  expect(await redis.set(held, 'held-by-the-test', 'PX', 120_000, 'NX')).toBe('OK');
  let clone: { id: string };
  try {
    const res = await h.http.post(`/v1/sites/${site.id}/clone`).set(auth(a.key)).send({ name: 'shop-cancelled' });
    expect(res.status).toBe(202);
    clone = res.body.site;
    await eventually(
      async () => ((await h.http.get(`/v1/jobs/${res.body.job.id}`).set(auth(a.key))).body.status === 'RUNNING' ? true : undefined),
      'the clone to run',
    );
    expect((await h.http.post(`/v1/jobs/${res.body.job.id}/cancel`).set(auth(a.key))).status).toBe(202);
  } finally {
    await redis.del(held);
    redis.disconnect();
  }
  await eventually(
    async () => ((await h.http.get(`/v1/sites/${clone.id}`).set(auth(a.key))).body.status === 'FAILED' ? true : undefined),
    'the cancelled clone to be FAILED',
  );
  // A new primary domain asks for a repair, which would have installed a blank WordPress.
  const added = await h.http
    .post(`/v1/sites/${clone.id}/domains`)
    .set(auth(a.key))
    .send({ hostname: `cancelled-${tag}.example`, primary: true });
  expect(added.status).toBe(201);
  const repair = await eventually(async () => {
    const { rows } = await h.db.query(`SELECT id FROM "Job" WHERE "siteId" = $1 AND kind = 'REPAIR'`, [clone.id]);
    return rows[0]?.id as string | undefined;
  }, 'the repair');
  const job = await waitForJob(h, a.key, repair);
  expect(job.status).toBe('FAILED');
  expect(job.error).toMatch(/clone whose copy from its backup did not complete/);
  expect(job.steps.map((x) => x.name)).not.toContain('install WordPress');
  expect((await h.http.get(`/v1/sites/${clone.id}`).set(auth(a.key))).body).toMatchObject({ status: 'FAILED' });
  // It can be deleted.
  const del = await h.http.delete(`/v1/sites/${clone.id}`).set(auth(a.key));
  expect((await waitForJob(h, a.key, del.body.job.id)).status).toBe('SUCCEEDED');
});
