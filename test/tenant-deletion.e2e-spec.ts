/**
 * Deleting tenants (DELETE /v1/tenants/{id}, GraphQL deleteTenant), and a site's database
 * and user being dropped when its delete job is retried after Berth died between the
 * job's "remove containers and volume" and "drop database and user" steps.
 */
import type Docker from 'dockerode';
import { auth, createTenant, gql, startHarness, waitForJob, type Harness, type JobBody } from './harness';
import { eventually } from './receivers';
import { exec, provision, removeSuiteObjects, testRedis } from './suite-helpers';
import { BACKUP_PASSWORD, BACKUP_REPOSITORY, TEST_INSTANCE } from './env';
import { execFileSync } from 'node:child_process';

// Short lock and stall timings, so the job of a killed Berth is taken up again quickly.
const TIMINGS = { BERTH_LOCK_TTL_MS: '6000', BERTH_STALLED_INTERVAL_MS: '2000' };

let h: Harness;
beforeAll(async () => {
  h = await startHarness(TIMINGS);
});
afterAll(async () => {
  await h?.stop();
  await removeSuiteObjects();
});

/** Every container, volume and network on the engine labelled with this tenant (of this instance). */
async function objectsOf(docker: Docker, slug: string): Promise<string[]> {
  const filters = { label: [`berth.instance=${TEST_INSTANCE}`, `berth.tenant=${slug}`] };
  const containers = await docker.listContainers({ all: true, filters });
  const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
  const networks = await docker.listNetworks({ filters });
  return [
    ...containers.map((c) => `container:${c.Labels['berth.role']}:${c.Names[0]}`),
    ...volumes.map((v) => `volume:${v.Labels?.['berth.role']}:${v.Name}`),
    ...networks.map((n) => `network:${n.Labels?.['berth.role']}:${n.Name}`),
  ].sort();
}

/** The tenant's database server container, found by its labels. */
async function dbContainer(slug: string): Promise<string> {
  const [c] = await h.docker.listContainers({
    all: true,
    filters: { label: [`berth.instance=${TEST_INSTANCE}`, `berth.tenant=${slug}`, 'berth.role=db'] },
  });
  if (!c) throw new Error(`no database server for tenant ${slug}`);
  return c.Id;
}

/** The databases and the users of the tenant's MariaDB server, as root. */
async function mariadb(slug: string): Promise<{ databases: string[]; users: string[] }> {
  const id = await dbContainer(slug);
  const run = async (q: string) => {
    const r = await exec(h.docker, id, ['sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 -N -e "${q}"`]);
    if (r.code !== 0) throw new Error(`${q}: exit ${r.code}: ${r.out}`);
    return r.out
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  };
  return { databases: await run('SHOW DATABASES'), users: await run('SELECT user FROM mysql.user') };
}

async function siteDb(siteId: string): Promise<{ dbName: string; dbUser: string }> {
  const { rows } = await h.db.query('SELECT "dbName", "dbUser" FROM "Site" WHERE id = $1', [siteId]);
  return rows[0];
}

async function rowsOf(tenantId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [table, where] of [
    ['Tenant', 'id = $1'],
    ['Site', '"tenantId" = $1'],
    ['Backup', '"tenantId" = $1'],
    ['ApiKey', '"tenantId" = $1'],
    ['Webhook', '"tenantId" = $1'],
    ['EmailNotification', '"tenantId" = $1'],
    ['Job', `"tenantId" = $1 AND kind <> 'DELETE_TENANT'`],
  ]) {
    const { rows } = await h.db.query(`SELECT count(*)::int AS n FROM "${table}" WHERE ${where}`, [tenantId]);
    counts[table] = rows[0].n;
  }
  return counts;
}

const GONE = { Tenant: 0, Site: 0, Backup: 0, ApiKey: 0, Webhook: 0, EmailNotification: 0, Job: 0 };
const DELETE_TENANT = 'mutation($id: ID!, $force: Boolean) { deleteTenant(id: $id, force: $force) { id kind status siteId } }';

describe('a tenant with sites', () => {
  let tenant: { id: string; slug: string };
  let key: string;
  let sites: { id: string; name: string }[];

  beforeAll(async () => {
    ({ tenant, key } = await createTenant(h));
    sites = await Promise.all([provision(h, key, { name: 'crash' }), provision(h, key, { name: 'www' })]);
    expect((await h.http.post('/v1/webhooks').set(auth(key)).send({ url: 'http://127.0.0.1:9/berth' })).status).toBe(201);
  });

  it('is not deleted without force: 409 TENANT_HAS_SITES over REST and GraphQL, and nothing changes', async () => {
    const rest = await h.http.delete(`/v1/tenants/${tenant.id}`).set(auth(h.admin));
    expect(rest.status).toBe(409);
    expect(rest.body).toMatchObject({ code: 'TENANT_HAS_SITES', status: 409 });
    const graph = await gql(h, h.admin, DELETE_TENANT, { id: tenant.id });
    expect(graph.errors?.[0]?.extensions?.code).toBe('TENANT_HAS_SITES');
    const unforced = await h.http.delete(`/v1/tenants/${tenant.id}?force=false`).set(auth(h.admin));
    expect(unforced.status).toBe(409);

    expect((await h.http.get(`/v1/tenants/${tenant.id}`).set(auth(key))).body.status).toBe('ACTIVE');
    for (const s of sites) expect((await h.http.get(`/v1/sites/${s.id}`).set(auth(key))).body.status).toBe('RUNNING');
    const { rows } = await h.db.query(`SELECT count(*)::int AS n FROM "Job" WHERE "tenantId" = $1 AND kind = 'DELETE_TENANT'`, [tenant.id]);
    expect(rows[0].n).toBe(0);
  });

  it('a site deleted by a job that Berth died in between removing its containers and dropping its database still loses its database and user', async () => {
    const site = sites[0];
    const { dbName, dbUser } = await siteDb(site.id);
    // Positive control: the site's database and user exist.
    const before = await mariadb(tenant.slug);
    expect(before.databases).toContain(dbName);
    expect(before.users).toContain(dbUser);

    // With its database server paused the job cannot get past the removal of the containers.
    const db = h.docker.getContainer(await dbContainer(tenant.slug));
    await db.pause();
    let job: JobBody;
    try {
      const del = await h.http.delete(`/v1/sites/${site.id}`).set(auth(key));
      expect(del.status).toBe(202);
      job = await eventually(
        async () => {
          const j = (await h.http.get(`/v1/jobs/${del.body.job.id}`).set(auth(key))).body as JobBody;
          return j.steps.some((s) => s.name === 'remove containers and volume' && s.status === 'succeeded') ? j : undefined;
        },
        'the delete job past "remove containers and volume"',
        60_000,
        50,
      );
      await h.berth.stop('SIGKILL');
      await h.db.end();
    } finally {
      await db.unpause();
    }
    expect(job.steps.some((s) => s.name === 'drop database and user' && s.status === 'succeeded')).toBe(false);
    const wordpress = await h.docker.listContainers({ all: true, filters: { label: [`berth.site-id=${site.id}`] } });
    expect(wordpress).toEqual([]);
    expect((await mariadb(tenant.slug)).databases).toContain(dbName);

    // A new Berth takes the job up again (BullMQ finds it stalled) and finishes it.
    h = await startHarness(TIMINGS);
    await eventually(
      async () => ((await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body.status === 'DELETED' ? true : undefined),
      'the site deleted',
      120_000,
    );
    const after = await mariadb(tenant.slug);
    expect(after.databases).not.toContain(dbName);
    expect(after.users).not.toContain(dbUser);
    expect(after.databases).toContain((await siteDb(sites[1].id)).dbName);
  });

  it('with force=true: its sites, network, database server, volumes, keys and rows all go; its events stay', async () => {
    const remaining = sites[1];
    // Positive control: the tenant's objects exist on the engine.
    const before = await objectsOf(h.docker, tenant.slug);
    for (const kind of ['container:db:', 'container:wordpress:', 'volume:db-volume:', 'volume:volume:', 'network:network:']) {
      expect(before.some((o) => o.startsWith(kind))).toBe(true);
    }
    expect((await h.http.get('/v1/sites').set(auth(key))).status).toBe(200);
    // A backup of the remaining site: the tenant takes it along when it goes.
    const backup = await h.http.post(`/v1/sites/${remaining.id}/backups`).set(auth(key));
    expect(backup.status).toBe(202);
    expect((await waitForJob(h, key, backup.body.job.id)).status).toBe('SUCCEEDED');
    const snapshots = async () =>
      JSON.parse(
        execFileSync('restic', ['snapshots', '--json', '--tag', `tenant:${tenant.id}`], {
          env: { ...process.env, RESTIC_REPOSITORY: BACKUP_REPOSITORY, RESTIC_PASSWORD: BACKUP_PASSWORD },
          encoding: 'utf8',
        }) || '[]',
      ) as unknown[];
    expect(await snapshots()).toHaveLength(1);

    const del = await h.http.delete(`/v1/tenants/${tenant.id}?force=true`).set(auth(h.admin));
    expect(del.status).toBe(202);
    expect(del.body.job).toMatchObject({ kind: 'DELETE_TENANT', tenantId: tenant.id, siteId: null });
    const job = await waitForJob(h, h.admin, del.body.job.id);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.steps.map((s) => s.name)).toEqual([
      'revoke API keys',
      'delete sites',
      'remove network, database server and volume',
      'forget backups',
      'remove the tenant',
    ]);
    expect(await snapshots()).toEqual([]);

    expect(await objectsOf(h.docker, tenant.slug)).toEqual([]);
    expect((await h.http.get('/v1/sites').set(auth(key))).status).toBe(401);
    expect((await h.http.get(`/v1/tenants/${tenant.id}`).set(auth(h.admin))).status).toBe(404);
    expect(await rowsOf(tenant.id)).toEqual(GONE);

    // The audit trail stays, readable by the admin: the remaining site was deleted by its own job.
    const events = async (type: string) =>
      (
        (await h.http.get(`/v1/events?type=${type}&limit=200`).set(auth(h.admin))).body as {
          tenantId: string;
          siteId: string | null;
          actorKeyId?: string;
        }[]
      ).filter((e) => e.tenantId === tenant.id);
    expect(await events('tenant.deleted')).toHaveLength(1);
    expect((await events('site.deleted')).map((e) => e.siteId).sort()).toEqual([sites[0].id, remaining.id].sort());
    expect(await events('tenant.created')).toHaveLength(1);
    const { rows } = await h.db.query('SELECT count(*)::int AS n FROM "Event" WHERE "tenantId" = $1', [tenant.id]);
    expect(rows[0].n).toBeGreaterThan(5);
    // The deletion job itself stays readable by the admin.
    expect((await h.http.get(`/v1/jobs/${del.body.job.id}`).set(auth(h.admin))).body.status).toBe('SUCCEEDED');
  });
});

describe('a tenant without sites', () => {
  it('is deleted; while its job waits, it takes no new site, key or change, and asking again answers the same job', async () => {
    const { tenant, key } = await createTenant(h);
    expect((await h.http.post('/v1/webhooks').set(auth(key)).send({ url: 'http://127.0.0.1:9/berth' })).status).toBe(201);
    const redis = testRedis();
    const lock = `berth:lock:tenant-deletion:${tenant.id}`;
    try {
      // The job cannot start while the test holds its lock, so the tenant stays DELETING.
      expect(await redis.set(lock, 'held-by-test', 'PX', 120_000, 'NX')).toBe('OK');
      const del = await h.http.delete(`/v1/tenants/${tenant.id}`).set(auth(h.admin));
      expect(del.status).toBe(202);
      expect(del.body.job).toMatchObject({ kind: 'DELETE_TENANT', status: 'QUEUED', siteId: null });
      expect((await h.http.get(`/v1/tenants/${tenant.id}`).set(auth(h.admin))).body.status).toBe('DELETING');

      const site = await h.http.post('/v1/sites').set(auth(key)).send({ name: 'late' });
      expect(site.status).toBe(409);
      expect(site.body.code).toBe('TENANT_DELETING');
      const newKey = await h.http.post(`/v1/tenants/${tenant.id}/api-keys`).set(auth(h.admin)).send({});
      expect(newKey.status).toBe(409);
      expect(newKey.body.code).toBe('TENANT_DELETING');
      const resume = await h.http.patch(`/v1/tenants/${tenant.id}`).set(auth(h.admin)).send({ suspended: false });
      expect(resume.status).toBe(409);
      expect(resume.body.code).toBe('TENANT_DELETING');
      const cancel = await h.http.post(`/v1/jobs/${del.body.job.id}/cancel`).set(auth(h.admin));
      expect(cancel.status).toBe(409);
      expect(cancel.body.code).toBe('JOB_NOT_CANCELLABLE');
      const again = await gql<{ deleteTenant: { id: string } }>(h, h.admin, DELETE_TENANT, { id: tenant.id, force: true });
      expect(again.data?.deleteTenant.id).toBe(del.body.job.id);
    } finally {
      await redis.del(lock);
      redis.disconnect();
    }
    const job = await waitForJob(
      h,
      h.admin,
      (await h.db.query(`SELECT id FROM "Job" WHERE "tenantId" = $1 AND kind = 'DELETE_TENANT'`, [tenant.id])).rows[0].id,
    );
    expect(job.status).toBe('SUCCEEDED');
    expect((await h.http.get(`/v1/tenants/${tenant.id}`).set(auth(h.admin))).status).toBe(404);
    expect((await h.http.get(`/v1/tenants/${tenant.id}`).set(auth(key))).status).toBe(401);
    expect(await rowsOf(tenant.id)).toEqual(GONE);
    const events = (await h.http.get('/v1/events?type=tenant.deleted&limit=200').set(auth(h.admin))).body as { tenantId: string }[];
    expect(events.filter((e) => e.tenantId === tenant.id)).toHaveLength(1);
  });
});

describe('refusals', () => {
  it('only an admin deletes a tenant; an id that is not a tenant answers 404; force must be a boolean', async () => {
    const { tenant, key } = await createTenant(h);
    const owner = await h.http.delete(`/v1/tenants/${tenant.id}`).set(auth(key));
    expect(owner.status).toBe(403);
    expect(owner.body.code).toBe('FORBIDDEN');
    expect((await gql(h, key, DELETE_TENANT, { id: tenant.id })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    for (const id of ['not-a-uuid', '00000000-0000-0000-0000-000000000000']) {
      const res = await h.http.delete(`/v1/tenants/${id}`).set(auth(h.admin));
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('TENANT_NOT_FOUND');
    }
    expect((await gql(h, h.admin, DELETE_TENANT, { id: 'not-a-uuid' })).errors?.[0]?.extensions?.code).toBe('TENANT_NOT_FOUND');
    expect((await h.http.delete(`/v1/tenants/${tenant.id}?force=maybe`).set(auth(h.admin))).status).toBe(400);
    // Positive control: the tenant survived all of that, and its owner can still use it.
    expect((await h.http.get(`/v1/tenants/${tenant.id}`).set(auth(key))).body.status).toBe('ACTIVE');

    const del = await h.http.delete(`/v1/tenants/${tenant.id}`).set(auth(h.admin));
    expect(del.status).toBe(202);
    expect((await waitForJob(h, h.admin, del.body.job.id)).status).toBe('SUCCEEDED');
  });
});
