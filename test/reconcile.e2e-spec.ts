import { auth, createTenant, exec, startHarness, waitForJob, type Harness } from './harness';
import { eventually } from './receivers';
import { removeSuiteObjects } from './suite-helpers';

let h: Harness;
let t: Awaited<ReturnType<typeof createTenant>>;

beforeAll(async () => {
  h = await startHarness({ BERTH_RECONCILE_INTERVAL_MS: '1000', BERTH_ORPHAN_GRACE_MS: '1500', BERTH_HTTP_READY_TIMEOUT_MS: '8000', BERTH_JOB_ATTEMPTS: '1' });
  t = await createTenant(h);
});
afterAll(async () => {
  await h.stop();
  await removeSuiteObjects();
});

async function provision(name: string, body: Record<string, unknown> = {}) {
  const res = await h.http.post('/v1/sites').set(auth(t.key)).send({ name, ...body });
  expect(res.status).toBe(202);
  expect((await waitForJob(h, t.key, res.body.job.id)).status).toBe('SUCCEEDED');
  return res.body.site as { id: string; name: string };
}

const site = (id: string) => h.http.get(`/v1/sites/${id}`).set(auth(t.key)).then((r) => r.body);
const inspect = (name: string) => h.docker.getContainer(name).inspect();

/** Waits until the site is RUNNING with a running container whose id differs from `oldId` (when given). */
async function converged(id: string, container: string, oldId?: string) {
  return eventually(async () => {
    const s = await site(id);
    const info = await inspect(container).catch(() => undefined);
    return s.status === 'RUNNING' && info?.State.Running && (!oldId || info.Id !== oldId) ? info : undefined;
  }, `${container} to be running again`);
}

/**
 * Waits until the site's latest repair job has succeeded and no job of the site is still
 * queued or running. A repair ends only once WordPress answers HTTP; the container alone
 * running (which `converged` sees) comes earlier.
 */
async function repaired(id: string) {
  return eventually(async () => {
    const { rows } = await h.db.query<{ kind: string; status: string }>(
      `SELECT kind, status FROM "Job" WHERE "siteId" = $1 ORDER BY "createdAt" DESC`, [id]);
    if (rows.some((j) => j.status === 'QUEUED' || j.status === 'RUNNING')) return undefined;
    const last = rows.find((j) => j.kind === 'REPAIR');
    return last?.status === 'SUCCEEDED' ? last : undefined;
  }, `a repair of site ${id} to succeed`);
}

describe('the reconciler', () => {
  it('recreates a WordPress container removed by hand', async () => {
    const s = await provision('removed');
    const name = `wp_${t.tenant.slug}_removed`;
    const before = await inspect(name);
    await h.docker.getContainer(name).remove({ force: true });
    const after = await converged(s.id, name, before.Id);
    expect(after.Mounts[0].Name).toBe(before.Mounts[0].Name);
    await repaired(s.id);
    expect((await fetch((await site(s.id)).url)).status).toBe(200);
    const events = (await h.http.get(`/v1/sites/${s.id}/events`).set(auth(t.key))).body.map((e: { type: string }) => e.type);
    expect(events).toContain('site.repair');
  });

  it('starts again a database server stopped by hand', async () => {
    await provision('dbstop');
    const db = `db_${t.tenant.slug}`;
    await h.docker.getContainer(db).stop({ t: 1 });
    await eventually(async () => ((await inspect(db)).State.Running ? true : undefined), 'the database server to run again');
  });

  it('is not stranded by a removed network: network and containers come back', async () => {
    const s = await provision('netgone');
    const net = `berth_${t.tenant.slug}`;
    const network = h.docker.getNetwork(net);
    const { Containers } = await network.inspect();
    for (const id of Object.keys(Containers ?? {})) await network.disconnect({ Container: id, Force: true });
    await network.remove();
    const recreated = await eventually(() => h.docker.getNetwork(net).inspect().catch(() => undefined), 'the network to be made again');
    const wp = await eventually(async () => {
      const info = await inspect(`wp_${t.tenant.slug}_netgone`).catch(() => undefined);
      return info?.State.Running && info.NetworkSettings.Networks[net]?.NetworkID === recreated.Id ? info : undefined;
    }, 'WordPress on the new network');
    expect(wp.HostConfig.NetworkMode).toBe(net);
    await eventually(async () => ((await inspect(`db_${t.tenant.slug}`)).NetworkSettings.Networks[net]?.NetworkID === recreated.Id ? true : undefined), 'the database server on the new network');
    await repaired(s.id);
    expect((await fetch((await site(s.id)).url)).status).toBe(200);
  });

  it('removes, after the grace period, an object labelled as Berth\'s that no site claims, and reports it', async () => {
    const orphan = await h.docker.createContainer({
      name: `wp_${t.tenant.slug}_ghost`,
      Image: 'berth/stub-wordpress:latest',
      Labels: { 'berth.managed-by': 'berth', 'berth.instance': process.env.BERTH_TEST_SLOT ? `e2e${process.env.BERTH_TEST_SLOT}` : 'e2e0', 'berth.tenant': t.tenant.slug, 'berth.site-id': '00000000-0000-0000-0000-00000000dead', 'berth.role': 'wordpress' },
    });
    // The image declares a VOLUME, so the orphan has an anonymous volume: it goes with it.
    const anonymous = (await orphan.inspect()).Mounts.find((m) => m.Type === 'volume')?.Name;
    expect(anonymous).toBeTruthy();
    await eventually(async () => ((await h.docker.getContainer(orphan.id).inspect().catch(() => undefined)) ? undefined : true), 'the orphan to be removed');
    expect(await h.docker.getVolume(anonymous!).inspect().catch((e: { statusCode?: number }) => e.statusCode)).toBe(404);
    const { rows } = await h.db.query(`SELECT message FROM "Event" WHERE type = 'orphan.removed' AND data::text LIKE $1`, [`%${orphan.id}%`]);
    expect(rows).toHaveLength(1);
  });
});

describe('updating a site', () => {
  it('replaces the WordPress container with the new settings, keeping volume, database and URL', async () => {
    const s = await provision('upd', { env: { A: '1' } });
    const name = `wp_${t.tenant.slug}_upd`;
    const before = await inspect(name);
    const url = (await site(s.id)).url;
    const wrote = await exec(h.docker, name, ['sh', '-c', 'echo kept > /var/www/html/berth-marker.txt']);
    expect(wrote.code).toBe(0);
    const res = await h.http.patch(`/v1/sites/${s.id}`).set(auth(t.key)).send({ env: { A: '2', B: 'x' }, restartPolicy: 'always', resources: { memoryMb: 128 } });
    expect(res.status).toBe(202);
    expect(res.body.job.kind).toBe('UPDATE');
    expect((await waitForJob(h, t.key, res.body.job.id)).status).toBe('SUCCEEDED');
    const after = await inspect(name);
    expect(after.Id).not.toBe(before.Id);
    expect(after.Config.Env).toEqual(expect.arrayContaining(['A=2', 'B=x']));
    expect(after.HostConfig.RestartPolicy?.Name).toBe('always');
    expect(after.HostConfig.Memory).toBe(128 * 1024 * 1024);
    expect(after.Mounts[0].Name).toBe(before.Mounts[0].Name);
    // The old container went with its anonymous volumes only: the site's files are still there.
    expect((await exec(h.docker, name, ['cat', '/var/www/html/berth-marker.txt'])).out.trim()).toBe('kept');
    const body = await site(s.id);
    expect(body).toMatchObject({ status: 'RUNNING', url, env: { A: '2', B: 'x' }, restartPolicy: 'always', memoryMb: 128 });
  });

  it('rolls back to the previous settings when the new container cannot run', async () => {
    const s = await provision('rollback');
    const name = `wp_${t.tenant.slug}_rollback`;
    const res = await h.http.patch(`/v1/sites/${s.id}`).set(auth(t.key)).send({ imageTag: 'does-not-exist' });
    const job = await waitForJob(h, t.key, res.body.job.id);
    expect(job.status).toBe('FAILED');
    expect(job.error).toMatch(/rolled back/);
    expect(job.steps.map((x) => x.name)).toContain('roll back to the previous settings');
    const body = await site(s.id);
    expect(body).toMatchObject({ status: 'RUNNING', imageTag: null });
    expect(body.lastError).toMatch(/rolled back/);
    expect((await inspect(name)).Config.Image).toBe('berth/stub-wordpress:latest');
    expect((await fetch(body.url)).status).toBe(200);
  });

  it('refuses bad settings with 400 and changes nothing', async () => {
    const s = await provision('strict');
    for (const bad of [{ env: { WORDPRESS_DB_USER: 'x' } }, { restartPolicy: 'sometimes' }, { imageTag: 'bad tag!' }, { resources: { memoryMb: 1 } }, { name: 'rename' }]) {
      const res = await h.http.patch(`/v1/sites/${s.id}`).set(auth(t.key)).send(bad);
      expect(res.status).toBe(400);
    }
    expect((await site(s.id)).generation).toBe(1);
  });
});

describe('cancelling jobs', () => {
  it('a queued job is cancelled at once and the site keeps its previous desired state', async () => {
    const s = await provision('cancel-q');
    // A restart holds the site; the stop queued behind it can still be cancelled.
    const restart = await h.http.post(`/v1/sites/${s.id}/restart`).set(auth(t.key));
    const stop = await h.http.post(`/v1/sites/${s.id}/stop`).set(auth(t.key));
    const cancel = await h.http.post(`/v1/jobs/${stop.body.job.id}/cancel`).set(auth(t.key));
    expect(cancel.status).toBe(202);
    expect((await waitForJob(h, t.key, stop.body.job.id)).status).toBe('CANCELLED');
    expect((await waitForJob(h, t.key, restart.body.job.id)).status).toBe('SUCCEEDED');
    const { rows } = await h.db.query('SELECT "desiredState" FROM "Site" WHERE id = $1', [s.id]);
    expect(rows[0].desiredState).toBe('RUNNING');
    // The restart may already have applied the stop it found recorded; the reconciler then
    // brings the site back to the desired state the cancellation restored.
    await eventually(async () => ((await site(s.id)).status === 'RUNNING' && (await inspect(`wp_${t.tenant.slug}_cancel-q`)).State.Running ? true : undefined), 'the site to run');
    const again = await h.http.post(`/v1/jobs/${stop.body.job.id}/cancel`).set(auth(t.key));
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('JOB_FINISHED');
  });

  it('a running job stops at its next step and the site is FAILED with the reason', async () => {
    // A new tenant's first site waits seconds for its database server's first start:
    // time enough to cancel while the job runs.
    const fresh = await createTenant(h);
    const res = await h.http.post('/v1/sites').set(auth(fresh.key)).send({ name: 'cancel-r' });
    await eventually(async () => ((await h.http.get(`/v1/jobs/${res.body.job.id}`).set(auth(fresh.key))).body.status === 'RUNNING' ? true : undefined), 'the job to run', 30_000);
    const cancel = await h.http.post(`/v1/jobs/${res.body.job.id}/cancel`).set(auth(fresh.key));
    expect(cancel.status).toBe(202);
    const job = await waitForJob(h, fresh.key, res.body.job.id);
    expect(job.status).toBe('CANCELLED');
    expect(job.steps.filter((x) => x.status === 'running')).toEqual([]);
    const body = (await h.http.get(`/v1/sites/${res.body.site.id}`).set(auth(fresh.key))).body;
    expect(body.status).toBe('FAILED');
    expect(body.lastError).toMatch(/cancelled/);
    const del = await h.http.delete(`/v1/sites/${res.body.site.id}`).set(auth(fresh.key));
    expect((await waitForJob(h, fresh.key, del.body.job.id)).status).toBe('SUCCEEDED');
    expect(await h.docker.listContainers({ all: true, filters: { label: [`berth.site-id=${res.body.site.id}`] } })).toEqual([]);
  });
});
