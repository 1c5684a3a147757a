import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { auth, createTenant, exec, startHarness, waitForJob, type Harness } from './harness';
import { testNames } from './env';
import { removeSuiteObjects } from './suite-helpers';
import { INSTALL_COMMAND, INSTALL_PHP } from '../src/sites/wordpress-install';
import { edgeFetch, edgeRoot } from './edge-client';
import { decodeQuotedPrintable, eventually, TestSmtpServer } from './receivers';

/**
 * The real WordPress image (berth/wordpress:6.1) driven end to end: provisioned through the
 * API and installed for its owner by the job, reached over HTTPS through the edge (real Caddy,
 * its internal CA), logged in to with the password the request gave and written to as a site
 * owner would, checked from inside its read-only container, restarted, screenshotted in
 * headless Chromium, deleted. A second site, created without a password, gets its owner a
 * set-password email whose link works. The tests run in order and share the sites.
 */

let h: Harness;
let tenant: { id: string; slug: string };
let key: string;
let site: { id: string; name: string };
/** The site through the edge (its platform hostname, HTTPS). */
let url: string;
/** The site on its host port, without the edge: for diagnosis only. */
let directUrl: string;
let wpName: string;
let root: string;
const smtp = new TestSmtpServer();

const run = randomBytes(4).toString('hex');
const title = `Berth E2E ${run}`;
const admin = { user: 'berth-admin', password: `Pw-${randomBytes(12).toString('hex')}` };
const mediaName = `berth-probe-${run}`;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const png = makePng(64, 48);
let mediaUrl: string;

beforeAll(async () => {
  const smtpPort = await smtp.start();
  h = await startHarness({
    BERTH_WORDPRESS_IMAGE: 'berth/wordpress:6.1',
    BERTH_SMTP_HOST: '127.0.0.1',
    BERTH_SMTP_PORT: String(smtpPort),
  });
  ({ tenant, key } = await createTenant(h));
  root = await edgeRoot();
});
afterAll(async () => {
  await h?.stop();
  await smtp.stop();
  await removeSuiteObjects();
});

/** Just enough of a browser's cookie store for one host (WordPress's path-scoped cookies carry equal values). */
class CookieJar {
  private readonly cookies = new Map<string, string>();
  set(name: string, value: string) {
    this.cookies.set(name, value);
  }
  names(): string[] {
    return [...this.cookies.keys()];
  }
  take(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const name = pair.slice(0, pair.indexOf('=')).trim();
      const value = pair.slice(pair.indexOf('=') + 1).trim();
      const expired = attrs.some(
        (a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()),
      );
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/** SQL as root on the tenant's database server (in `db` when given); tab-separated rows, no header. */
function rootSql(query: string, db = '') {
  return exec(
    h.docker,
    testNames.dbContainer(tenant.slug),
    ['sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 -N ${db} -e "$BERTH_SQL"`],
    undefined,
    [`BERTH_SQL=${query}`],
  );
}

/** A request to the site through the edge, never following redirects, keeping cookies in jar when given. */
async function wp(path: string, init: RequestInit = {}, jar?: CookieJar): Promise<Response> {
  const headers = new Headers(init.headers);
  if (jar) headers.set('Cookie', jar.header());
  const res = await edgeFetch(root, new URL(path, url), { ...init, headers });
  jar?.take(res);
  return res;
}

const titleOf = (html: string) => html.match(/<title>([^<]*)<\/title>/)?.[1];

/** A small valid RGB PNG with a gradient (so it is not all one colour). */
function makePng(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows: number[] = [];
  for (let y = 0; y < height; y++) {
    rows.push(0);
    for (let x = 0; x < width; x++) rows.push((x * 4) & 0xff, (y * 5) & 0xff, 0x80);
  }
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
}

describe('a real WordPress site', () => {
  // How fast is measured in bench/ (npm run bench), not asserted here.
  it('is provisioned through REST, installed for its owner, and RUNNING behind the edge', async () => {
    const res = await h.http
      .post('/v1/sites')
      .set(auth(key))
      .send({
        name: 'press',
        wordpress: { title, adminUser: admin.user, adminEmail: `owner-${run}@example.com`, adminPassword: admin.password },
      });
    expect(res.status).toBe(202);
    site = res.body.site;
    const job = await waitForJob(h, key, res.body.job.id, 180_000);
    expect(job).toMatchObject({ status: 'SUCCEEDED', error: null });
    const steps = (job as unknown as { steps: { name: string; detail: string | null; startedAt: string; finishedAt: string }[] }).steps;
    const step = (name: string) => {
      const found = steps.find((st) => st.name === name);
      if (!found) throw new Error(`no step "${name}" in ${steps.map((st) => st.name).join(', ')}`);
      return { ...found, started: Date.parse(found.startedAt), finished: Date.parse(found.finishedAt) };
    };
    // Installed once its database exists, beside the wait for HTTP (WordPress's first start
    // copying itself into the volume meanwhile), and before it is served (its route loads
    // meanwhile: the edge never serves the installer, below).
    expect(step('install WordPress').started).toBeGreaterThanOrEqual(step('site database and user').finished);
    expect(step('install WordPress').started).toBeLessThan(step('wait for HTTP').finished);
    expect(step('install WordPress').finished).toBeLessThanOrEqual(step('route through the edge').started);
    expect(step('install WordPress').detail).toMatch(/^WordPress 6\.1[.\d]* installed for berth-admin$/);
    const body = (await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body;
    expect(body.status).toBe('RUNNING');
    expect(body.wordpress).toMatchObject({ title, adminUser: admin.user, adminEmail: `owner-${run}@example.com` });
    expect(body.wordpress.installedAt).toBeTruthy();
    expect(body.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(body.publicUrl).toBe(`https://${body.hostname}:${new URL(body.publicUrl).port}/`);
    url = body.publicUrl;
    directUrl = body.url;
    wpName = testNames.wpContainer(tenant.slug, 'press');
    const info = await h.docker.getContainer(wpName).inspect();
    expect(info.Config.Image).toBe('berth/wordpress:6.1');
    expect(info.State.Running).toBe(true);
  });

  it("installs from the image's own WordPress while the volume is still empty, writing what the volume's would", async () => {
    // Berth's job installs beside WordPress's first start, which is copying itself into the
    // new volume meanwhile; until that copy is done, the installer loads the image's own
    // tree. A container of the same image whose entrypoint never runs (its volume stays
    // empty) is installed with the request Berth used, into a database of its own; the result
    // must equal Berth's install of the site, which read its volume or the image, whichever
    // the copy left it. Both are compared as they are right after the install: posts, users,
    // and the options the install writes. The same container shows an interrupted install
    // made whole.
    const dbName = (await h.db.query('SELECT "dbName" FROM "Site" WHERE id = $1', [site.id])).rows[0].dbName as string;
    const other = `${dbName}_img`;
    const info = await h.docker.getContainer(wpName).inspect();
    const dbUser = info.Config.Env.find((e) => e.startsWith('WORDPRESS_DB_USER='))!.split('=')[1];
    const name = `${wpName}-img-${run}`;
    const network = info.HostConfig.NetworkMode!;
    const made = await rootSql(`CREATE DATABASE \`${other}\`; GRANT ALL PRIVILEGES ON \`${other}\`.* TO '${dbUser}'@'%'`);
    expect(made).toEqual({ code: 0, out: '' });
    try {
      const empty = await h.docker.createContainer({
        name,
        Image: 'berth/wordpress:6.1',
        Entrypoint: ['sleep', '600'],
        Cmd: [],
        Env: info.Config.Env.map((e) => (e.startsWith('WORDPRESS_DB_NAME=') ? `WORDPRESS_DB_NAME=${other}` : e)),
        HostConfig: { ReadonlyRootfs: true, NetworkMode: network },
        // WordPress finds its database server by the alias Berth links it under.
        NetworkingConfig: { EndpointsConfig: { [network]: { Links: [`${testNames.dbContainer(tenant.slug)}:mysql`] } } },
      });
      await empty.start();
      expect(await exec(h.docker, name, ['ls', '-A', '/var/www/html'])).toEqual({ code: 0, out: '' });
      const request = JSON.stringify({
        url,
        title,
        adminUser: admin.user,
        adminEmail: `owner-${run}@example.com`,
        password: 'x'.repeat(20),
      });
      const installer = (container: string) =>
        new Promise<string>((resolve, reject) => {
          const child = execFile(
            'docker',
            ['exec', '-i', '-u', '33:33', '-e', `BERTH_WP_INSTALL=${INSTALL_PHP}`, container, ...INSTALL_COMMAND],
            { timeout: 60_000 },
            (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)),
          );
          child.stdin!.end(request);
        });
      expect(await installer(name)).toMatch(/^BERTH-RESULT \{"fresh":true,/m);
      expect(await exec(h.docker, name, ['ls', '-A', '/var/www/html'])).toEqual({ code: 0, out: '' });
      // Run again, it finds WordPress installed (the control). An install stopped before it
      // made its user (tables and options, no user, no post) is installed again, not reported
      // installed; with posts but no user, it is left as it is and the install fails.
      expect(await installer(name)).toMatch(/^BERTH-RESULT \{"fresh":false,/m);
      const marked = "INSERT INTO wp_options (option_name, option_value) VALUES ('berth_half', 'x')";
      const marker = async () => (await rootSql("SELECT COUNT(*) FROM wp_options WHERE option_name = 'berth_half'", other)).out.trim();
      expect(await rootSql(`DELETE FROM wp_usermeta; DELETE FROM wp_users; ${marked}`, other)).toEqual({ code: 0, out: '' });
      await expect(installer(name)).rejects.toThrow(/WordPress is installed with 3 posts and no user; left as it is/);
      expect(await marker()).toBe('1');
      expect(await rootSql('DELETE FROM wp_comments; DELETE FROM wp_postmeta; DELETE FROM wp_posts', other)).toEqual({ code: 0, out: '' });
      expect(await installer(name)).toMatch(/^BERTH-RESULT \{"fresh":true,/m);
      expect(await marker()).toBe('0');
      // Two installers at once (an earlier attempt's exec still running beside a retry): one
      // installs, the other waits for it and finds WordPress installed.
      expect(await rootSql(`DROP DATABASE \`${other}\`; CREATE DATABASE \`${other}\``)).toEqual({ code: 0, out: '' });
      const both = await Promise.all([installer(name), installer(name)]);
      expect(both.map((out) => /"fresh":(true|false)/.exec(out)?.[1]).sort()).toEqual(['false', 'true']);
      expect((await rootSql('SELECT COUNT(*) FROM wp_users', other)).out.trim()).toBe('1');
      // An install stopped while it made the tables (tables, no options): WordPress itself stops
      // loading there (the control); the installer removes them and installs.
      const emptied =
        'DELETE FROM wp_options; DELETE FROM wp_usermeta; DELETE FROM wp_users; DELETE FROM wp_comments; DELETE FROM wp_postmeta; DELETE FROM wp_posts';
      expect(await rootSql(emptied, other)).toEqual({ code: 0, out: '' });
      const load = await exec(
        h.docker,
        name,
        ['php', '-r', 'define("WP_INSTALLING", true); define("ABSPATH", "/usr/src/wordpress/"); require ABSPATH . "wp-config-docker.php";'],
        'www-data',
      );
      expect(load.out).toMatch(/One or more database tables are unavailable/);
      expect(await installer(name)).toMatch(/^BERTH-RESULT \{"fresh":true,/m);

      const dump = async (db: string) => {
        const res = await rootSql(
          [
            'SELECT ID, post_author, post_title, post_name, post_status, post_type, comment_status, guid, post_content FROM wp_posts ORDER BY ID',
            'SELECT user_login, user_email, user_nicename, display_name FROM wp_users ORDER BY ID',
            "SELECT user_id, meta_key, meta_value FROM wp_usermeta WHERE meta_key <> 'session_tokens' ORDER BY umeta_id",
            'SELECT * FROM wp_terms ORDER BY term_id',
            'SELECT comment_ID, comment_author, comment_content FROM wp_comments ORDER BY comment_ID',
            "SELECT option_name, option_value FROM wp_options WHERE option_name IN ('siteurl', 'home', 'blogname', 'admin_email', 'template', 'stylesheet', 'db_version', 'initial_db_version', 'permalink_structure', 'wp_user_roles', 'fresh_site', 'page_on_front', 'wp_page_for_privacy_policy', 'sticky_posts') ORDER BY option_name",
          ].join('; '),
          db,
        );
        expect(res.code).toBe(0);
        return res.out;
      };
      const mine = await dump(other);
      // The first posts link to the site itself (the web installer's guess of its URL), not to a path in the container.
      expect(mine).toContain(`${url}?p=1`);
      expect(mine).toContain(`${url}wp-admin/`);
      expect(mine).not.toMatch(/\/var\/www\/html|\/usr\/src\/wordpress/);
      expect(mine).toContain(`template\ttwentytwentythree`);
      expect(await dump(dbName)).toBe(mine);
    } finally {
      await h.docker
        .getContainer(name)
        .remove({ force: true, v: true })
        .catch(() => undefined);
      await rootSql(`DROP DATABASE IF EXISTS \`${other}\``);
    }
  });

  it('answers over HTTPS through the edge with the installed site, and never with the installer', async () => {
    const front = await wp('/');
    expect(front.status).toBe(200);
    const html = await front.text();
    expect(titleOf(html)).toBe(title);
    // WordPress's home and siteurl are the site's public URL: its own links point there.
    expect(html).toContain(`${url}wp-`);
    expect(html).not.toContain(directUrl);
    // The installer and the config writer are not served through the edge, with any suffix.
    for (const path of ['/wp-admin/install.php', '/wp-admin/install.php?step=2', '/wp-admin/install.php/x', '/wp-admin/setup-config.php']) {
      const res = await wp(path);
      expect(`${path} ${res.status}`).toBe(`${path} 404`);
      expect(await res.text()).not.toMatch(/weblog_title|admin_password/);
    }
    // Control: the same request straight to the container reaches WordPress's installer
    // page, which WordPress itself now closes.
    const direct = await fetch(new URL('/wp-admin/install.php', directUrl), { redirect: 'manual', signal: AbortSignal.timeout(30_000) });
    expect(direct.status).toBe(200);
    expect(await direct.text()).toMatch(/Already Installed/);
  });

  it('logs in to wp-admin and uploads a media file into the site volume', async () => {
    const jar = new CookieJar();
    jar.set('wordpress_test_cookie', 'WP%20Cookie%20check');
    const attempt = (pwd: string, j: CookieJar) =>
      wp('/wp-login.php', { method: 'POST', body: new URLSearchParams({ log: admin.user, pwd, testcookie: '1' }) }, j);
    // Without the test cookie WordPress refuses, as with a browser that blocks cookies.
    const noCookie = await attempt(admin.password, new CookieJar());
    expect(noCookie.status).toBe(200);
    expect(await noCookie.text()).toMatch(/Cookies are blocked/);
    const wrong = await attempt('not-the-password', jar);
    expect(wrong.status).toBe(200);
    expect(await wrong.text()).toMatch(/The password you entered for the username .* is incorrect/);

    const login = await wp(
      '/wp-login.php',
      {
        method: 'POST',
        body: new URLSearchParams({
          log: admin.user,
          pwd: admin.password,
          testcookie: '1',
          'wp-submit': 'Log In',
          redirect_to: `${url}wp-admin/`,
        }),
      },
      jar,
    );
    expect(login.status).toBe(302);
    expect(new URL(login.headers.get('location')!, url).pathname).toBe('/wp-admin/');
    expect(jar.names().some((n) => n.startsWith('wordpress_logged_in_'))).toBe(true);

    const dashboard = await wp('/wp-admin/', {}, jar);
    expect(dashboard.status).toBe(200);
    expect(await dashboard.text()).toContain('Dashboard');

    const mediaNew = await wp('/wp-admin/media-new.php', {}, jar);
    expect(mediaNew.status).toBe(200);
    const nonce = (await mediaNew.text()).match(/"_wpnonce":"([0-9a-f]+)"/)?.[1];
    expect(nonce).toBeTruthy();

    const form = new FormData();
    form.append('name', `${mediaName}.png`);
    form.append('action', 'upload-attachment');
    form.append('_wpnonce', nonce!);
    form.append('async-upload', new Blob([png], { type: 'image/png' }), `${mediaName}.png`);
    const upload = await wp('/wp-admin/async-upload.php', { method: 'POST', body: form }, jar);
    expect(upload.status).toBe(200);
    const result = (await upload.json()) as { success: boolean; data: { url: string; mime: string; width: number; height: number } };
    expect(result.success).toBe(true);
    expect(result.data).toMatchObject({ mime: 'image/png', width: 64, height: 48 });
    mediaUrl = result.data.url;
    expect(mediaUrl.startsWith(`${url}wp-content/uploads/`)).toBe(true);

    const served = await edgeFetch(root, mediaUrl);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer()).equals(png)).toBe(true);

    const found = await exec(h.docker, wpName, [
      'find',
      '/var/www/html/wp-content/uploads',
      '-name',
      `${mediaName}*.png`,
      '-size',
      `${png.length}c`,
    ]);
    expect(found.code).toBe(0);
    expect(found.out.trim()).toBe(`/var/www/html${new URL(mediaUrl).pathname}`);
  });

  it('moves to a new primary domain: its links, a serialized option holding its URL, the old hostname redirecting', async () => {
    const oldOrigin = new URL(url).origin;
    const dbName = (await h.db.query('SELECT "dbName" FROM "Site" WHERE id = $1', [site.id])).rows[0].dbName as string;
    const sql = (query: string) => rootSql(query, dbName);
    // An option as plugins keep them: PHP-serialized, one URL plain and one JSON-escaped, with a
    // multi-byte character so that lengths in bytes and in characters differ.
    const serialized = (origin: string) => {
      const s = (v: string) => `s:${Buffer.byteLength(v)}:"${v}";`;
      const json = JSON.stringify({ u: `${origin}/é` }).replace(/\//g, '\\/');
      return `a:2:{${s('logo')}${s(`${origin}/wp-content/logo-é.png`)}${s('json')}${s(json)}}`;
    };
    const hex = (v: string) => Buffer.from(v, 'utf8').toString('hex');
    expect(
      (
        await sql(
          `INSERT INTO wp_options (option_name, option_value, autoload) VALUES ('berth_probe', UNHEX('${hex(serialized(oldOrigin))}'), 'no')`,
        )
      ).code,
    ).toBe(0);

    const domain = `press-${run}.example.test`;
    const added = await h.http.post(`/v1/sites/${site.id}/domains`).set(auth(key)).send({ hostname: domain, primary: true });
    expect(added.status).toBe(201);
    const jobId = await eventually(async () => {
      const { rows } = await h.db.query(`SELECT id FROM "Job" WHERE "siteId" = $1 AND kind = 'REPAIR' ORDER BY "createdAt" DESC LIMIT 1`, [
        site.id,
      ]);
      return rows[0]?.id as string | undefined;
    }, 'the job that moves the site');
    const job = await waitForJob(h, key, jobId, 120_000);
    expect(job).toMatchObject({ status: 'SUCCEEDED', error: null });
    const moved = (job as unknown as { steps: { name: string; detail: string | null }[] }).steps.find(
      (st) => st.name === 'move WordPress to its public URL',
    );
    const newOrigin = `https://${domain}:${new URL(url).port}`;
    expect(moved?.detail).toMatch(
      new RegExp(`^${oldOrigin.replace(/[.]/g, '\\.')} → ${newOrigin.replace(/[.]/g, '\\.')}: [1-9]\\d* values rewritten$`),
    );
    const body = (await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body;
    expect(body.publicUrl).toBe(`${newOrigin}/`);

    // The front page on the new domain links to the new domain only.
    const oldUrl = url;
    url = body.publicUrl;
    const front = await wp('/');
    expect(front.status).toBe(200);
    const html = await front.text();
    expect(titleOf(html)).toBe(title);
    expect(html).toContain(`${newOrigin}/wp-`);
    expect(html).not.toContain(new URL(oldOrigin).hostname);
    // The old hostname redirects to the new one, path kept.
    const old = await edgeFetch(root, new URL('/some/path?x=1', oldUrl));
    expect(old.status).toBe(301);
    expect(old.headers.get('location')).toBe(`${newOrigin}/some/path?x=1`);
    // The serialized option is rewritten with valid lengths (PHP reads it back), its JSON-escaped URL too.
    const stored = await sql(`SELECT HEX(option_value) FROM wp_options WHERE option_name = 'berth_probe'`);
    expect(Buffer.from(stored.out.trim(), 'hex').toString('utf8')).toBe(serialized(newOrigin));
    const read = await exec(
      h.docker,
      wpName,
      ['php', '-r', 'require "/var/www/html/wp-load.php"; echo json_encode(get_option("berth_probe"));'],
      'www-data',
    );
    expect(JSON.parse(read.out.slice(read.out.indexOf('{')))).toEqual({
      logo: `${newOrigin}/wp-content/logo-é.png`,
      json: JSON.stringify({ u: `${newOrigin}/é` }).replace(/\//g, '\\/'),
    });
    // GUIDs are left alone, as WordPress requires.
    const guids = await sql(`SELECT guid FROM wp_posts WHERE post_type = 'attachment'`);
    expect(guids.out).toContain(oldOrigin);
    mediaUrl = mediaUrl.replace(oldOrigin, newOrigin);
    const media = await edgeFetch(root, mediaUrl);
    expect(media.status).toBe(200);
  });

  it('runs with a read-only root filesystem and a writable /var/www/html volume', async () => {
    const info = await h.docker.getContainer(wpName).inspect();
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.Mounts).toEqual([
      expect.objectContaining({ Type: 'volume', Name: testNames.siteVolume(tenant.slug, 'press'), Destination: '/var/www/html', RW: true }),
    ]);
    for (const target of ['/berth-probe', '/usr/berth-probe', '/usr/src/wordpress/berth-probe', '/etc/apache2/berth-probe']) {
      const res = await exec(h.docker, wpName, ['sh', '-c', `echo x > ${target}`]);
      expect(res.code).not.toBe(0);
      expect(res.out).toMatch(/Read-only file system/);
    }
    // As the web server's user too, the way WordPress itself writes.
    const probe = `/var/www/html/wp-content/berth-probe-${run}`;
    expect(await exec(h.docker, wpName, ['sh', '-c', `echo x > ${probe} && cat ${probe} && rm ${probe}`], 'www-data')).toEqual({
      code: 0,
      out: 'x\n',
    });
    expect(await exec(h.docker, wpName, ['sh', '-c', 'echo x > /var/www/html/berth-probe && rm /var/www/html/berth-probe'])).toEqual({
      code: 0,
      out: '',
    });
    expect((await exec(h.docker, wpName, ['sh', '-c', 'echo x > /usr/berth-probe'], 'www-data')).code).not.toBe(0);
  });

  it('keeps its content across a restart through the API', async () => {
    const before = (await h.docker.getContainer(wpName).inspect()).State.StartedAt;
    const res = await h.http.post(`/v1/sites/${site.id}/restart`).set(auth(key));
    expect(res.status).toBe(202);
    expect(res.body.job.kind).toBe('RESTART');
    expect(await waitForJob(h, key, res.body.job.id, 60_000)).toMatchObject({ status: 'SUCCEEDED', error: null });
    const after = await h.docker.getContainer(wpName).inspect();
    expect(after.State.Running).toBe(true);
    expect(after.State.StartedAt).not.toBe(before);
    const body = (await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body;
    expect(body).toMatchObject({ status: 'RUNNING', url: directUrl, publicUrl: url });

    const front = await wp('/');
    expect(front.status).toBe(200);
    expect(titleOf(await front.text())).toBe(title);
    const media = await edgeFetch(root, mediaUrl);
    expect(media.status).toBe(200);
    expect(Buffer.from(await media.arrayBuffer()).equals(png)).toBe(true);
  });

  it('renders the front page in headless Chromium (screenshot saved in the test output)', async () => {
    const outDir = process.env.BERTH_TEST_OUTPUT ?? join(__dirname, '..', 'test-output');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, 'wordpress-front-page.png');
    rmSync(file, { force: true });
    /** Runs Debian's chromium headless with a fresh profile; returns its stdout. */
    const chromium = async (...args: string[]): Promise<string> => {
      const profile = mkdtempSync(join(tmpdir(), 'berth-chromium-'));
      try {
        return await new Promise<string>((resolve, reject) =>
          execFile(
            'chromium',
            [
              '--headless',
              '--no-sandbox',
              '--disable-gpu',
              '--disable-quic',
              '--no-first-run',
              '--disable-background-networking',
              '--disable-component-update',
              '--disable-sync',
              `--user-data-dir=${profile}`,
              '--window-size=1280,900',
              // The edge's certificate is from its own CA; every hostname is the edge on loopback.
              '--ignore-certificate-errors',
              '--host-resolver-rules=MAP * 127.0.0.1',
              ...args,
              url,
            ],
            { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 },
            (err, stdout, stderr) => (err ? reject(new Error(`chromium failed: ${err.message}\n${stderr.slice(-2000)}`)) : resolve(stdout)),
          ),
        );
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    };
    // The page Chromium rendered is the site's (an error page would screenshot just as well).
    const dom = await chromium('--dump-dom');
    if (titleOf(dom) !== title) console.log('DOM:', dom.replace(/<style[\s\S]*?<\/style>/g, '').slice(0, 3000));
    expect(titleOf(dom)).toBe(title);
    await chromium(`--screenshot=${file}`);
    const shot = readFileSync(file);
    expect(statSync(file).size).toBeGreaterThan(5 * 1024);
    expect(shot.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(shot.toString('ascii', 12, 16)).toBe('IHDR');
    expect([shot.readUInt32BE(16), shot.readUInt32BE(20)]).toEqual([1280, 900]);
  });

  it('without a password, emails its owner a set-password link that works through the edge', async () => {
    const ownerEmail = `second-${run}@example.com`;
    const res = await h.http
      .post('/v1/sites')
      .set(auth(key))
      .send({ name: 'press2', wordpress: { adminEmail: ownerEmail } });
    expect(res.status).toBe(202);
    expect(await waitForJob(h, key, res.body.job.id, 180_000)).toMatchObject({ status: 'SUCCEEDED', error: null });
    const second = (await h.http.get(`/v1/sites/${res.body.site.id}`).set(auth(key))).body;
    // Defaults: the title is the site's name, the login the mailbox part of the email.
    expect(second.wordpress).toMatchObject({ title: 'press2', adminUser: `second-${run}`, adminEmail: ownerEmail });
    const mail = await eventually(() => smtp.mails.find((m) => m.to.includes(ownerEmail)), 'the set-password email');
    const link = decodeQuotedPrintable(mail.raw).match(/https:\/\/\S+\/wp-login\.php\?action=rp&key=[^&\s]+&login=[^\s]+/)?.[0];
    expect(link).toBeTruthy();
    expect(new URL(link!).origin).toBe(new URL(second.publicUrl).origin);
    const front = await edgeFetch(root, second.publicUrl);
    expect(titleOf(await front.text())).toBe('press2');

    // WordPress moves the key into a cookie and redirects to its form, which it shows only
    // for a valid key; the same steps with a wrong key end on its "invalid key" error.
    const follow = async (href: string) => {
      const jar = new CookieJar();
      const first = await edgeFetch(root, href);
      jar.take(first);
      expect(first.status).toBe(302);
      return edgeFetch(root, new URL(first.headers.get('location')!, href), { headers: { Cookie: jar.header() } });
    };
    const form = await follow(link!);
    expect(form.status).toBe(200);
    expect(await form.text()).toMatch(/name="pass1"/);
    const wrong = await follow(link!.replace(/key=[^&]+/, 'key=not-the-key-0000'));
    expect(wrong.status).toBe(302);
    expect(wrong.headers.get('location')).toMatch(/error=invalidkey/);
  });

  it('is deleted through the API: no container, no volume, no database left', async () => {
    const env = Object.fromEntries(
      (await h.docker.getContainer(wpName).inspect()).Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
    const dbName = env.WORDPRESS_DB_NAME;
    expect(dbName).toMatch(/^wp_[0-9a-f]{16}$/);
    const showDbs = () =>
      exec(h.docker, testNames.dbContainer(tenant.slug), [
        'sh',
        '-c',
        'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 -N -e "SHOW DATABASES"',
      ]);
    const present = await showDbs();
    expect(present.code).toBe(0);
    expect(present.out.split('\n')).toContain(dbName);

    const del = await h.http.delete(`/v1/sites/${site.id}`).set(auth(key));
    expect(del.status).toBe(202);
    expect(del.body.job.kind).toBe('DELETE');
    expect(await waitForJob(h, key, del.body.job.id, 60_000)).toMatchObject({ status: 'SUCCEEDED', error: null });

    const filters = { label: [`berth.site-id=${site.id}`] };
    expect(await h.docker.listContainers({ all: true, filters })).toEqual([]);
    expect((await h.docker.listVolumes({ filters })).Volumes ?? []).toEqual([]);
    const gone = await showDbs();
    expect(gone.code).toBe(0);
    expect(gone.out.split('\n')).not.toContain(dbName);
    expect((await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body).toMatchObject({ status: 'DELETED', url: null });
    await expect(fetch(directUrl, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    // The edge no longer routes its hostname.
    await eventually(async () => {
      const res = await wp('/');
      return res.status === 404 && res.headers.get('x-berth-unrouted') ? true : undefined;
    }, "the edge's own 404 for the deleted site");
  });
});
