import type Docker from 'dockerode';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerOptions } from '../src/docker/docker-options';
import { auth, createTenant, envOf, exec, gql, startHarness, uniqueSlug, waitForJob, type Harness } from './harness';
import { eventually } from './receivers';
import { testEnv, testNames } from './env';
import { SecretBox } from '../src/common/crypto';
import { removeSuiteObjects } from './suite-helpers';

let h: Harness;
let tenant: { id: string; slug: string };
let key: string;

beforeAll(async () => {
  h = await startHarness();
  ({ tenant, key } = await createTenant(h));
});
afterAll(async () => {
  await h.stop();
  await removeSuiteObjects();
});

async function provision(body: Record<string, unknown>, k = key) {
  const res = await h.http.post('/v1/sites').set(auth(k)).send(body);
  if (res.status !== 202) throw new Error(`POST /v1/sites: ${res.status} ${JSON.stringify(res.body)}`);
  const job = await waitForJob(h, k, res.body.job.id);
  expect(job).toMatchObject({ status: 'SUCCEEDED', error: null });
  return { site: res.body.site as { id: string; name: string }, job };
}

/** A Unix socket that forwards to the Docker Engine until cut() drops every connection through it. */
async function engineProxy() {
  const target = dockerOptions(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock');
  const dir = mkdtempSync(join(tmpdir(), 'berth-engine-proxy-'));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = target.socketPath ? net.connect(target.socketPath) : net.connect(Number(target.port), String(target.host));
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  const path = join(dir, 'docker.sock');
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    host: `unix://${path}`,
    open: () => sockets.size,
    cut: () => sockets.forEach((s) => s.destroy()),
    close: async () => {
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function siteCount(tenantId: string): Promise<number> {
  const { rows } = await h.db.query('SELECT count(*)::int AS n FROM "Site" WHERE "tenantId" = $1', [tenantId]);
  return rows[0].n;
}

describe('provisioning through REST', () => {
  let site: { id: string; name: string };
  let wp: Docker.ContainerInspectInfo;

  beforeAll(async () => {
    const res = await h.http
      .post('/v1/sites')
      .set(auth(key))
      .send({
        name: 'blog',
        env: { WORDPRESS_DEBUG: '1', GREETING: 'hello world; $(rm -rf /)' },
        restartPolicy: 'on-failure:3',
        resources: { memoryMb: 256, cpus: 0.5 },
      });
    expect(res.status).toBe(202);
    expect(res.body.site).toMatchObject({ name: 'blog', tenantId: tenant.id, status: 'PENDING' });
    expect(res.body.job).toMatchObject({ kind: 'PROVISION', status: 'QUEUED' });
    site = res.body.site;
    const job = await waitForJob(h, key, res.body.job.id);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.steps.map((s) => s.status)).toEqual(job.steps.map(() => 'succeeded'));
    wp = await h.docker.getContainer(testNames.wpContainer(tenant.slug, 'blog')).inspect();
  });

  it('reports the site RUNNING with its URL and the live state of its containers', async () => {
    const res = await h.http.get(`/v1/sites/${site.id}`).set(auth(key));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'RUNNING', restartPolicy: 'on-failure:3', memoryMb: 256, cpus: 0.5, lastError: null });
    expect(res.body.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(res.body.containers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: testNames.wpContainer(tenant.slug, 'blog'), role: 'wordpress', state: 'running', id: wp.Id }),
        expect.objectContaining({ name: testNames.dbContainer(tenant.slug), role: 'db', state: 'running' }),
      ]),
    );
    expect(res.body.restartCount).toBe(0);
    const page = await fetch(res.body.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('berth-stub-wordpress');
  });

  it('shows a change made behind its back at once, though it remembers container state for 30 s', async () => {
    const state = async () => {
      const body = (await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body as { containers: { role: string; state: string }[] };
      return body.containers.find((c) => c.role === 'wordpress')!.state;
    };
    expect(await state()).toBe('running');
    const container = h.docker.getContainer(testNames.wpContainer(tenant.slug, 'blog'));
    await container.pause();
    try {
      // The Engine's "pause" event ends what was remembered: well under the 30 s it would keep it.
      await eventually(async () => ((await state()) === 'paused' ? true : undefined), 'the paused state', 3_000, 50);
    } finally {
      await container.unpause();
    }
    await eventually(async () => ((await state()) === 'running' ? true : undefined), 'the running state', 3_000, 50);
  });

  it('makes the WordPress root filesystem read-only, writable only in the tmpfs paths and the volume', async () => {
    expect(wp.HostConfig.ReadonlyRootfs).toBe(true);
    expect(Object.keys(wp.HostConfig.Tmpfs ?? {}).sort()).toEqual(['/run/apache2', '/run/lock/apache2', '/tmp']);
    expect(wp.Mounts).toEqual([
      expect.objectContaining({ Type: 'volume', Name: testNames.siteVolume(tenant.slug, 'blog'), Destination: '/var/www/html', RW: true }),
    ]);
    expect((await exec(h.docker, wp.Id, ['sh', '-c', 'echo x > /root-file'])).code).not.toBe(0);
    expect((await exec(h.docker, wp.Id, ['sh', '-c', 'echo x > /usr/file'])).code).not.toBe(0);
    for (const dir of ['/var/www/html', '/tmp', '/run/apache2', '/run/lock/apache2']) {
      expect(await exec(h.docker, wp.Id, ['sh', '-c', `echo x > ${dir}/probe && cat ${dir}/probe`])).toEqual({ code: 0, out: 'x\n' });
    }
  });

  it('injects the database settings and the request env, and the mysql alias reaches the database server', async () => {
    const env = envOf(wp);
    expect(env).toMatchObject({ WORDPRESS_DB_HOST: 'mysql', WORDPRESS_DEBUG: '1', GREETING: 'hello world; $(rm -rf /)' });
    expect(env.WORDPRESS_DB_NAME).toMatch(/^wp_[0-9a-f]{16}$/);
    expect(env.WORDPRESS_DB_USER).toBe(env.WORDPRESS_DB_NAME);
    expect(env.WORDPRESS_DB_PASSWORD).toMatch(/^[A-Za-z0-9_-]{32}$/);
    // The server's greeting packet names MariaDB: the alias resolves and the port answers.
    const reach = await exec(h.docker, wp.Id, ['sh', '-c', 'nc -w 3 mysql 3306 </dev/null']);
    expect(reach.out).toMatch(/MariaDB/);
  });

  it('publishes port 80 on 127.0.0.1, on a port reserved for the site, with the restart policy, limits and labels asked for', async () => {
    const port = Number(wp.HostConfig.PortBindings?.['80/tcp']?.[0]?.HostPort);
    expect(port).toBeGreaterThanOrEqual(20000);
    expect(port).toBeLessThanOrEqual(29999);
    expect(wp.HostConfig.PortBindings).toEqual({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] });
    expect(wp.NetworkSettings.Ports['80/tcp']?.[0]).toEqual({ HostIp: '127.0.0.1', HostPort: String(port) });
    expect((await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body.url).toBe(`http://127.0.0.1:${port}/`);
    expect(wp.HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 3 });
    expect(wp.HostConfig.Memory).toBe(256 * 1024 * 1024);
    expect(wp.HostConfig.NanoCpus).toBe(500_000_000);
    expect(wp.Config.Labels).toMatchObject({
      'berth.managed-by': 'berth',
      'berth.tenant': tenant.slug,
      'berth.site': 'blog',
      'berth.role': 'wordpress',
    });
  });

  it('gives the tenant a private network with an explicit subnet and a database server that publishes no port', async () => {
    const db = await h.docker.getContainer(testNames.dbContainer(tenant.slug)).inspect();
    expect(db.Config.Labels).toMatchObject({ 'berth.managed-by': 'berth', 'berth.tenant': tenant.slug, 'berth.role': 'db' });
    expect(db.HostConfig.PortBindings ?? {}).toEqual({});
    expect(Object.values(db.NetworkSettings.Ports ?? {}).every((b) => b === null)).toBe(true);
    expect(db.Mounts).toEqual([
      expect.objectContaining({ Type: 'volume', Name: testNames.dbVolume(tenant.slug), Destination: '/var/lib/mysql' }),
    ]);
    const net = await h.docker.getNetwork(testNames.network(tenant.slug)).inspect();
    expect(net.Labels).toMatchObject({ 'berth.managed-by': 'berth', 'berth.tenant': tenant.slug, 'berth.role': 'network' });
    expect(net.IPAM?.Config?.[0]?.Subnet).toMatch(/^10\.(8[0-9]|9[0-5])\.\d+\.0\/24$/);
    const vol = await h.docker.getVolume(testNames.siteVolume(tenant.slug, 'blog')).inspect();
    expect(vol.Labels).toMatchObject({ 'berth.site': 'blog', 'berth.role': 'volume' });
  });

  it('never returns or stores the passwords in clear', async () => {
    const password = envOf(wp).WORDPRESS_DB_PASSWORD;
    const bodies = [
      await h.http.get(`/v1/sites/${site.id}`).set(auth(key)),
      await h.http.get('/v1/sites').set(auth(key)),
      await h.http.get(`/v1/sites/${site.id}/events`).set(auth(key)),
    ].map((r) => JSON.stringify(r.body));
    for (const body of bodies) expect(body).not.toContain(password);
    const { rows } = await h.db.query('SELECT row_to_json(s)::text AS j FROM "Site" s WHERE id = $1', [site.id]);
    expect(rows[0].j).not.toContain(password);
    expect(h.berth.output()).not.toContain(password);
  });

  it('running the same job again changes nothing (idempotent apply)', async () => {
    const res = await h.http.post(`/v1/sites/${site.id}/start`).set(auth(key));
    expect(res.status).toBe(202);
    const job = await waitForJob(h, key, res.body.job.id);
    expect(job.status).toBe('SUCCEEDED');
    const after = await h.docker.getContainer(testNames.wpContainer(tenant.slug, 'blog')).inspect();
    expect(after.Id).toBe(wp.Id);
    expect(after.State.StartedAt).toBe(wp.State.StartedAt);
    const containers = await h.docker.listContainers({ all: true, filters: { label: [`berth.site-id=${site.id}`] } });
    expect(containers).toHaveLength(1);
  });
});

describe('provisioning through GraphQL', () => {
  it('createSite returns the site and job; job and site queries follow it to RUNNING', async () => {
    const created = await gql<{ createSite: { site: { id: string; status: string }; job: { id: string; kind: string } } }>(
      h,
      key,
      'mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id status } job { id kind status } } }',
      { i: { name: 'gql-site', env: { FOO: 'bar' }, restartPolicy: 'always' } },
    );
    expect(created.errors).toBeUndefined();
    const { site, job } = created.data!.createSite;
    expect(job.kind).toBe('PROVISION');
    expect((await waitForJob(h, key, job.id)).status).toBe('SUCCEEDED');
    const q = await gql<{
      site: { status: string; url: string; containers: { role: string; state: string }[] };
      job: { status: string; progress: number; steps: { name: string }[] };
    }>(
      h,
      key,
      'query($s: ID!, $j: ID!) { site(id: $s) { status url containers { role state } } job(id: $j) { status progress steps { name } } }',
      { s: site.id, j: job.id },
    );
    expect(q.errors).toBeUndefined();
    expect(q.data!.site.status).toBe('RUNNING');
    expect(q.data!.site.containers).toEqual(expect.arrayContaining([{ role: 'wordpress', state: 'running' }]));
    expect(q.data!.job).toMatchObject({ status: 'SUCCEEDED', progress: 100 });
    const inspect = await h.docker.getContainer(testNames.wpContainer(tenant.slug, 'gql-site')).inspect();
    expect(inspect.HostConfig.RestartPolicy?.Name).toBe('always');
    const list = await gql<{ sites: { id: string }[] }>(h, key, '{ sites(status: RUNNING) { id } }');
    expect(list.data!.sites.map((s) => s.id)).toContain(site.id);
  });
});

describe('per-site databases on a real MariaDB server', () => {
  it("each site user can use its own database and is refused on another site's", async () => {
    const one = await provision({ name: 'db-one' });
    const two = await provision({ name: 'db-two' });
    const a = envOf(await h.docker.getContainer(testNames.wpContainer(tenant.slug, one.site.name)).inspect());
    const b = envOf(await h.docker.getContainer(testNames.wpContainer(tenant.slug, two.site.name)).inspect());
    const db = testNames.dbContainer(tenant.slug);
    const sql = (user: string, pw: string, database: string, q: string) =>
      exec(h.docker, db, ['mariadb', '-h127.0.0.1', `-u${user}`, `-p${pw}`, database, '-e', q]);
    expect(
      await sql(a.WORDPRESS_DB_USER, a.WORDPRESS_DB_PASSWORD, a.WORDPRESS_DB_NAME, 'CREATE TABLE t (i INT); INSERT INTO t VALUES (1);'),
    ).toMatchObject({ code: 0 });
    const refused = await sql(a.WORDPRESS_DB_USER, a.WORDPRESS_DB_PASSWORD, b.WORDPRESS_DB_NAME, 'SELECT 1');
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/Access denied/);
    const wrongPassword = await sql(b.WORDPRESS_DB_USER, a.WORDPRESS_DB_PASSWORD, b.WORDPRESS_DB_NAME, 'SELECT 1');
    expect(wrongPassword.code).not.toBe(0);
    expect(await sql(b.WORDPRESS_DB_USER, b.WORDPRESS_DB_PASSWORD, b.WORDPRESS_DB_NAME, 'SELECT 1')).toMatchObject({ code: 0 });
  });
});

describe('lifecycle', () => {
  let site: { id: string; name: string };
  let name: string;
  beforeAll(async () => {
    ({ site } = await provision({ name: 'life' }));
    name = testNames.wpContainer(tenant.slug, 'life');
  });

  it('stop stops the container and reports STOPPED; start brings it back RUNNING', async () => {
    const stop = await h.http.post(`/v1/sites/${site.id}/stop`).set(auth(key));
    expect(stop.status).toBe(202);
    expect((await waitForJob(h, key, stop.body.job.id)).status).toBe('SUCCEEDED');
    expect((await h.docker.getContainer(name).inspect()).State.Running).toBe(false);
    expect((await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body).toMatchObject({ status: 'STOPPED' });

    const start = await h.http.post(`/v1/sites/${site.id}/start`).set(auth(key));
    expect((await waitForJob(h, key, start.body.job.id)).status).toBe('SUCCEEDED');
    const body = (await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body;
    expect(body.status).toBe('RUNNING');
    expect((await fetch(body.url)).status).toBe(200);
  });

  it('restart restarts the container and keeps its URL', async () => {
    const url = (await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body.url;
    const before = (await h.docker.getContainer(name).inspect()).State.StartedAt;
    const restart = await h.http.post(`/v1/sites/${site.id}/restart`).set(auth(key));
    expect((await waitForJob(h, key, restart.body.job.id)).status).toBe('SUCCEEDED');
    const after = await h.docker.getContainer(name).inspect();
    expect(after.State.Running).toBe(true);
    expect(after.State.StartedAt).not.toBe(before);
    expect((await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body.url).toBe(url);
    expect((await fetch(url)).status).toBe(200);
  });

  it('logs returns the tail, and follow streams new lines until the client leaves', async () => {
    const tail = await h.http.get(`/v1/sites/${site.id}/logs?tail=50`).set(auth(key));
    expect(tail.status).toBe(200);
    expect(tail.text).toContain('stub wordpress listening');
    const one = await h.http.get(`/v1/sites/${site.id}/logs?tail=1`).set(auth(key));
    expect(one.text.trim().split('\n')).toHaveLength(1);

    const url = new URL(`/v1/sites/${site.id}/logs?tail=0&follow=true`, h.berth.url);
    const received = await new Promise<string>((resolve, reject) => {
      const req = http.get(url, { headers: auth(key) }, (res) => {
        expect(res.statusCode).toBe(200);
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
          if (text.includes('/followed-marker')) {
            req.destroy();
            resolve(text);
          }
        });
      });
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      // Make the container log a request line after the stream is open.
      setTimeout(() => {
        void (async () => {
          const body = (await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body;
          await fetch(new URL('/followed-marker', body.url)).catch(() => undefined);
        })();
      }, 500);
    });
    expect(received).toContain('/followed-marker');
    const bad = await h.http.get(`/v1/sites/${site.id}/logs?tail=-5`).set(auth(key));
    expect(bad.status).toBe(400);
  });

  it('a followed log ends cleanly, and Berth stays up, when the connection to the engine drops', async () => {
    // A second API process reaches the engine through a proxy the test can cut, as an engine restart would.
    const proxy = await engineProxy();
    const api = await startHarness({ BERTH_ROLE: 'api', DOCKER_HOST: proxy.host });
    try {
      const ended = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the followed log did not end after the engine connection dropped')), 20_000);
        const req = http.get(new URL(`/v1/sites/${site.id}/logs?tail=1&follow=true`, api.berth.url), { headers: auth(key) }, (res) => {
          expect(res.statusCode).toBe(200);
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString();
            if (proxy.open() > 0) proxy.cut(); // the tail arrived: the stream is live
          });
          res.on('end', () => {
            clearTimeout(timer);
            resolve(text);
          });
        });
        req.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      expect(ended).toMatch(/\S/); // the tail, and whatever the site logged before the cut
      expect((await api.http.get('/healthz')).status).toBe(200);
      expect(api.berth.child.exitCode).toBeNull();
    } finally {
      await api.stop();
      await proxy.close();
    }
  });

  it('delete removes the containers, the volume and the database, and frees the name', async () => {
    const dbName = envOf(await h.docker.getContainer(name).inspect()).WORDPRESS_DB_NAME;
    const del = await h.http.delete(`/v1/sites/${site.id}`).set(auth(key));
    expect(del.status).toBe(202);
    expect(del.body.job.kind).toBe('DELETE');
    expect((await waitForJob(h, key, del.body.job.id)).status).toBe('SUCCEEDED');
    const filters = { label: [`berth.site-id=${site.id}`] };
    expect(await h.docker.listContainers({ all: true, filters })).toEqual([]);
    expect((await h.docker.listVolumes({ filters })).Volumes).toEqual([]);
    const dbs = await exec(h.docker, testNames.dbContainer(tenant.slug), [
      'sh',
      '-c',
      'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 -N -e "SHOW DATABASES; SELECT user FROM mysql.user"',
    ]);
    expect(dbs.code).toBe(0);
    expect(dbs.out).not.toContain(dbName);
    const body = (await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body;
    expect(body).toMatchObject({ status: 'DELETED', url: null });
    expect((await h.http.post(`/v1/sites/${site.id}/start`).set(auth(key))).status).toBe(409);
    const events = (await h.http.get(`/v1/sites/${site.id}/events`).set(auth(key))).body.map((e: { type: string }) => e.type);
    expect(events).toEqual(expect.arrayContaining(['site.created', 'site.provisioned', 'site.delete.requested', 'site.deleted']));
    // The name can be used again.
    const again = await provision({ name: 'life' });
    expect(again.site.id).not.toBe(site.id);
  });
});

describe("a container under a site's name that is another site's", () => {
  // Names carry the tenant's slug and the site's name, both free again once deleted: what a
  // deleted namesake left (on a node that was down, or a deleted tenant's whose slug was taken
  // again) must never be shown as the new site's, nor its logs read.
  it("is never shown as the site's, nor are its logs read", async () => {
    const { site } = await provision({ name: 'namesake' });
    const name = testNames.wpContainer(tenant.slug, 'namesake');
    const wordpress = async () =>
      (
        (await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body.containers as { role: string; state: string; id: string | null }[]
      ).find((c) => c.role === 'wordpress');
    const logs = async () => (await h.http.get(`/v1/sites/${site.id}/logs?tail=1`).set(auth(key))).status;
    // The control: the site's own container is shown, and its logs read.
    const own = await h.docker.getContainer(name).inspect();
    expect(await wordpress()).toMatchObject({ state: 'running', id: own.Id });
    expect(await logs()).toBe(200);
    // The same name, instance, tenant and site labels, another site's id.
    let other: Docker.Container | undefined;
    await h.docker.getContainer(name).rename({ name: `${name}-aside` });
    try {
      other = await h.docker.createContainer({
        name,
        Image: 'berth/busybox:latest',
        Cmd: ['sleep', '300'],
        Labels: { ...own.Config.Labels, 'berth.site-id': randomUUID() },
      });
      await other.start();
      expect(await wordpress()).toMatchObject({ state: 'missing', id: null });
      expect(await logs()).toBe(404);
    } finally {
      await other?.remove({ force: true });
      await h.docker.getContainer(`${name}-aside`).rename({ name });
    }
    expect(await wordpress()).toMatchObject({ state: 'running', id: own.Id });
    expect(await logs()).toBe(200);
    const del = await h.http.delete(`/v1/sites/${site.id}`).set(auth(key));
    expect((await waitForJob(h, key, del.body.job.id)).status).toBe('SUCCEEDED');
  });
});

describe('tenants provisioning at once', () => {
  it('do not interfere: both sites run, on distinct networks and database servers', async () => {
    const b = await createTenant(h);
    const c = await createTenant(h);
    const [sb, sc] = await Promise.all([provision({ name: 'www' }, b.key), provision({ name: 'www' }, c.key)]);
    expect(sb.site.id).not.toBe(sc.site.id);
    const [nb, nc] = await Promise.all([b, c].map((t) => h.docker.getNetwork(testNames.network(t.tenant.slug)).inspect()));
    expect(nb.IPAM?.Config?.[0]?.Subnet).not.toBe(nc.IPAM?.Config?.[0]?.Subnet);
    const [wb, wc] = await Promise.all([b, c].map((t) => h.docker.getContainer(testNames.wpContainer(t.tenant.slug, 'www')).inspect()));
    expect(Object.keys(wb.NetworkSettings.Networks)).toEqual([testNames.network(b.tenant.slug)]);
    expect(Object.keys(wc.NetworkSettings.Networks)).toEqual([testNames.network(c.tenant.slug)]);
    // Tenant B cannot see, stop or read logs of tenant C's site.
    for (const res of [
      await h.http.get(`/v1/sites/${sc.site.id}`).set(auth(b.key)),
      await h.http.post(`/v1/sites/${sc.site.id}/stop`).set(auth(b.key)),
      await h.http.get(`/v1/sites/${sc.site.id}/logs`).set(auth(b.key)),
      await h.http.delete(`/v1/sites/${sc.site.id}`).set(auth(b.key)),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('SITE_NOT_FOUND');
    }
    expect((await h.http.get('/v1/sites').set(auth(b.key))).body.map((s: { id: string }) => s.id)).toEqual([sb.site.id]);
    expect((await h.docker.getContainer(testNames.wpContainer(c.tenant.slug, 'www')).inspect()).State.Running).toBe(true);

    // Each database server started from the data directory prepared in its image, and its
    // first start gave it its own root password: each tenant's opens its own server only.
    const box = new SecretBox(Buffer.from(testEnv().BERTH_ENCRYPTION_KEY as string, 'base64'));
    const rootPassword = async (id: string) =>
      box.open((await h.db.query('SELECT "dbRootPasswordEnc" AS s FROM "Tenant" WHERE id = $1', [id])).rows[0].s as string);
    const [pb, pc] = await Promise.all([rootPassword(b.tenant.id), rootPassword(c.tenant.id)]);
    expect(pb).not.toBe(pc);
    const asRoot = (t: typeof b, pw: string) =>
      exec(h.docker, testNames.dbContainer(t.tenant.slug), [
        'mariadb',
        '-h127.0.0.1',
        '-uroot',
        `-p${pw}`,
        '-N',
        '-e',
        'SELECT CURRENT_USER()',
      ]);
    expect(await asRoot(b, pb)).toMatchObject({ code: 0, out: expect.stringContaining('root@%') });
    expect(await asRoot(c, pc)).toMatchObject({ code: 0, out: expect.stringContaining('root@%') });
    expect(await asRoot(b, pc)).toMatchObject({ code: 1, out: expect.stringMatching(/Access denied/) });
    expect(await asRoot(c, pb)).toMatchObject({ code: 1, out: expect.stringMatching(/Access denied/) });
    for (const t of [b, c]) {
      const db = testNames.dbContainer(t.tenant.slug);
      const log = (await h.docker.getContainer(db).logs({ stdout: true, stderr: true })).toString();
      expect(log).toContain('Unpacking the prepared data directory');
      expect(log).not.toContain('Initializing database files');
      // Once it answered, nothing of the first start is left: no marker, no init file.
      await eventually(
        async () =>
          /first start done/.test((await h.docker.getContainer(db).logs({ stdout: true, stderr: true })).toString()) ? true : undefined,
        'the first start to end',
      );
      const left = await exec(h.docker, db, ['ls', '-A', '/var/lib/mysql', '/run/mysqld']);
      expect(left.out).toContain('mysqld.sock'); // control: the listing sees /run/mysqld
      expect(left.out).not.toMatch(/berth-first-start|berth-init\.sql/);
    }
  });
});

describe('Idempotency-Key', () => {
  it('returns the same site and job however many times and however concurrently it is sent', async () => {
    const t = await createTenant(h);
    const send = () => h.http.post('/v1/sites').set(auth(t.key)).set('Idempotency-Key', 'order-42').send({ name: 'same' });
    const responses = await Promise.all(Array.from({ length: 20 }, send));
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 202));
    expect(new Set(responses.map((r) => r.body.site.id)).size).toBe(1);
    expect(new Set(responses.map((r) => r.body.job.id)).size).toBe(1);
    expect(await siteCount(t.tenant.id)).toBe(1);
    expect((await waitForJob(h, t.key, responses[0].body.job.id)).status).toBe('SUCCEEDED');
    const later = await send();
    expect(later.body.site.id).toBe(responses[0].body.site.id);
    const reused = await h.http.post('/v1/sites').set(auth(t.key)).set('Idempotency-Key', 'order-42').send({ name: 'other' });
    expect(reused.status).toBe(409);
    expect(reused.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('bad input creates nothing', () => {
  let t: Awaited<ReturnType<typeof createTenant>>;
  beforeAll(async () => {
    t = await createTenant(h, uniqueSlug(), { maxSites: 1, maxMemoryMb: 512 });
  });

  async function expectNothingMade(before: number, name?: string) {
    expect(await siteCount(t.tenant.id)).toBe(before);
    if (name) {
      const found = await h.docker.listContainers({
        all: true,
        filters: { label: [`berth.tenant=${t.tenant.slug}`, `berth.site=${name}`] },
      });
      expect(found).toEqual([]);
    }
  }

  it.each([
    ['an upper-case name', { name: 'Blog' }, 'VALIDATION_FAILED', 400],
    ['a name too short', { name: 'ab' }, 'VALIDATION_FAILED', 400],
    ['a name too long', { name: 'a'.repeat(41) }, 'VALIDATION_FAILED', 400],
    ['a name with an underscore', { name: 'my_blog' }, 'VALIDATION_FAILED', 400],
    ['a name with path traversal', { name: '../etc' }, 'VALIDATION_FAILED', 400],
    ['a name ending with a hyphen', { name: 'blog-' }, 'VALIDATION_FAILED', 400],
    ['a name with shell metacharacters', { name: 'a;rm -rf' }, 'VALIDATION_FAILED', 400],
    ['a reserved env name', { name: 'okname', env: { WORDPRESS_DB_HOST: 'evil' } }, 'VALIDATION_FAILED', 400],
    ['a malformed env name', { name: 'okname', env: { 'BAD-NAME': 'x' } }, 'VALIDATION_FAILED', 400],
    ['an oversized env', { name: 'okname', env: { BIG: 'x'.repeat(9000) } }, 'VALIDATION_FAILED', 400],
    ['an env that is not an object', { name: 'okname', env: 'A=1' }, 'VALIDATION_FAILED', 400],
    ['a bad restart policy', { name: 'okname', restartPolicy: 'sometimes' }, 'VALIDATION_FAILED', 400],
    ['memory over the tenant quota', { name: 'okname', resources: { memoryMb: 4096 } }, 'QUOTA_EXCEEDED', 422],
    ['a memory limit with a fraction', { name: 'okname', resources: { memoryMb: 256.5 } }, 'VALIDATION_FAILED', 400],
    // Its text has no '.' (5e-323): class-validator's IsNumber({ maxDecimalPlaces }) threw on it (a 500).
    ['a memory limit that is a fraction in exponent form', { name: 'okname', resources: { memoryMb: 5e-323 } }, 'VALIDATION_FAILED', 400],
    ['an unknown field', { name: 'okname', image: 'evil:latest' }, 'VALIDATION_FAILED', 400],
    ['a WordPress admin email that is not one', { name: 'okname', wordpress: { adminEmail: 'nobody' } }, 'VALIDATION_FAILED', 400],
    ['a WordPress admin login with a space', { name: 'okname', wordpress: { adminUser: 'jane doe' } }, 'VALIDATION_FAILED', 400],
    ['a WordPress admin password too short', { name: 'okname', wordpress: { adminPassword: 'short' } }, 'VALIDATION_FAILED', 400],
    ['a WordPress locale that is not one', { name: 'okname', wordpress: { locale: '../../x' } }, 'VALIDATION_FAILED', 400],
    ['an unknown WordPress field', { name: 'okname', wordpress: { plugins: ['evil'] } }, 'VALIDATION_FAILED', 400],
  ])('refuses %s', async (_what, body, code, status) => {
    const before = await siteCount(t.tenant.id);
    const res = await h.http.post('/v1/sites').set(auth(t.key)).send(body);
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(res.body.detail).toBeTruthy();
    await expectNothingMade(before, (body as { name: string }).name);
  });

  it("refuses an unknown tenant and another tenant's id, the same way", async () => {
    const before = await siteCount(t.tenant.id);
    const unknown = await h.http
      .post('/v1/sites')
      .set(auth(h.admin))
      .send({ name: 'okname', tenantId: '00000000-0000-0000-0000-000000000000' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('TENANT_NOT_FOUND');
    const other = await h.http.post('/v1/sites').set(auth(key)).send({ name: 'okname', tenantId: t.tenant.id });
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('TENANT_NOT_FOUND');
    const missing = await h.http.post('/v1/sites').set(auth(h.admin)).send({ name: 'okname' });
    expect(missing.status).toBe(400);
    await expectNothingMade(before);
  });

  it('refuses a suspended tenant, then the quota, then a duplicate name', async () => {
    await h.http.patch(`/v1/tenants/${t.tenant.id}`).set(auth(h.admin)).send({ suspended: true });
    const suspended = await h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'first' });
    expect(suspended.status).toBe(403);
    expect(suspended.body.code).toBe('TENANT_SUSPENDED');
    await expectNothingMade(0, 'first');
    await h.http.patch(`/v1/tenants/${t.tenant.id}`).set(auth(h.admin)).send({ suspended: false });

    const first = await h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'first' });
    expect(first.status).toBe(202);
    const dup = await h.http.patch(`/v1/tenants/${t.tenant.id}`).set(auth(h.admin)).send({ maxSites: 2 });
    expect(dup.status).toBe(200);
    const same = await h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'first' });
    expect(same.status).toBe(409);
    expect(same.body.code).toBe('SITE_NAME_TAKEN');
    await h.http.patch(`/v1/tenants/${t.tenant.id}`).set(auth(h.admin)).send({ maxSites: 1 });
    const over = await h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'second' });
    expect(over.status).toBe(422);
    expect(over.body.code).toBe('QUOTA_EXCEEDED');
    await expectNothingMade(1, 'second');
    expect((await waitForJob(h, t.key, first.body.job.id)).status).toBe('SUCCEEDED');
  });

  it('answers coded GraphQL errors for the same mistakes', async () => {
    const bad = await gql(h, t.key, 'mutation { createSite(input: { name: "Bad Name" }) { site { id } } }');
    expect(bad.errors?.[0].extensions?.code).toBe('VALIDATION_FAILED');
    const reserved = await gql(
      h,
      t.key,
      'mutation { createSite(input: { name: "okname", env: { WORDPRESS_DB_PASSWORD: "x" } }) { site { id } } }',
    );
    expect(reserved.errors?.[0].extensions?.code).toBe('VALIDATION_FAILED');
    const missing = await gql(h, t.key, '{ site(id: "00000000-0000-0000-0000-000000000000") { id } }');
    expect(missing.errors?.[0].extensions?.code).toBe('SITE_NOT_FOUND');
    const job = await gql(h, t.key, '{ job(id: "not-a-uuid") { id } }');
    expect(job.errors?.[0].extensions?.code).toBe('JOB_NOT_FOUND');
  });
});
