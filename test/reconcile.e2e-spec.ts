import { auth, createTenant, exec, startHarness, waitForJob, type Harness } from './harness';
import { TEST_INSTANCE } from './env';
import { eventually } from './receivers';
import { testNames } from './env';
import { reconcilerPasses, removeSuiteObjects } from './suite-helpers';

let h: Harness;
let t: Awaited<ReturnType<typeof createTenant>>;
const settings = {
  BERTH_RECONCILE_INTERVAL_MS: '1000',
  BERTH_ORPHAN_GRACE_MS: '1500',
  BERTH_HTTP_READY_TIMEOUT_MS: '8000',
  BERTH_JOB_ATTEMPTS: '1',
  BERTH_ROLLOUT_BATCH: '2',
  BERTH_METRICS_TOKEN: 'berth-e2e-reconcile-metrics-token',
};

beforeAll(async () => {
  h = await startHarness(settings);
  t = await createTenant(h);
});
afterAll(async () => {
  await h.stop();
  await removeSuiteObjects();
});

async function provision(name: string, body: Record<string, unknown> = {}) {
  const res = await h.http
    .post('/v1/sites')
    .set(auth(t.key))
    .send({ name, ...body });
  expect(res.status).toBe(202);
  expect((await waitForJob(h, t.key, res.body.job.id)).status).toBe('SUCCEEDED');
  return res.body.site as { id: string; name: string };
}

/** A container labelled as this instance's that no site claims: the reconciler removes it after the grace period. */
const makeOrphan = (name: string) =>
  h.docker.createContainer({
    name: testNames.wpContainer(t.tenant.slug, name),
    Image: 'berth/stub-wordpress:latest',
    Labels: {
      'berth.managed-by': 'berth',
      'berth.instance': TEST_INSTANCE,
      'berth.tenant': t.tenant.slug,
      'berth.site-id': '00000000-0000-0000-0000-00000000dead',
      'berth.role': 'wordpress',
    },
  });
const gone = (id: string) =>
  h.docker
    .getContainer(id)
    .inspect()
    .then(
      () => undefined,
      () => true,
    );

const site = (id: string) =>
  h.http
    .get(`/v1/sites/${id}`)
    .set(auth(t.key))
    .then((r) => r.body);
const passes = () => reconcilerPasses(h, settings.BERTH_METRICS_TOKEN);
const inspect = (name: string) => h.docker.getContainer(name).inspect();
/** The site, read for a wait: a FAILED site is reported (as the wait's last error) with its reason. */
async function notFailed(id: string) {
  const s = await site(id);
  if (s.status === 'FAILED') throw new Error(`site ${id} is FAILED: ${s.lastError}`);
  return s;
}

/** Waits until the site is RUNNING with a running container whose id differs from `oldId` (when given). */
async function converged(id: string, container: string, oldId?: string) {
  return eventually(async () => {
    const s = await notFailed(id);
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
    const { rows } = await h.db.query<{ kind: string; status: string; error: string | null }>(
      `SELECT kind, status, error FROM "Job" WHERE "siteId" = $1 ORDER BY "createdAt" DESC`,
      [id],
    );
    if (rows.some((j) => j.status === 'QUEUED' || j.status === 'RUNNING')) return undefined;
    const last = rows.find((j) => j.kind === 'REPAIR');
    if (last?.status === 'FAILED') throw new Error(`its last repair FAILED: ${last.error}`);
    return last?.status === 'SUCCEEDED' ? last : undefined;
  }, `a repair of site ${id} to succeed`);
}

describe('the reconciler', () => {
  it('recreates a WordPress container removed by hand', async () => {
    const s = await provision('removed');
    const name = testNames.wpContainer(t.tenant.slug, 'removed');
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
    const db = testNames.dbContainer(t.tenant.slug);
    await h.docker.getContainer(db).stop({ t: 1 });
    await eventually(async () => ((await inspect(db)).State.Running ? true : undefined), 'the database server to run again');
  });

  it('is not stranded by a removed network: network and containers come back', async () => {
    const s = await provision('netgone');
    const net = testNames.network(t.tenant.slug);
    const network = h.docker.getNetwork(net);
    // The network goes while Berth is not looking (frozen: a busy host, an operator's prune):
    // otherwise its reconciler answers the first disconnection (a Docker event) with a repair
    // that races the removal ("has active endpoints", or the repair failing on a network
    // removed under it; with BERTH_JOB_ATTEMPTS=1 here that leaves the site FAILED).
    const pid = h.berth.child.pid as number;
    process.kill(pid, 'SIGSTOP');
    try {
      const { Containers } = await network.inspect();
      for (const id of Object.keys(Containers ?? {})) await network.disconnect({ Container: id, Force: true });
      await network.remove();
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const recreated = await eventually(
      () =>
        h.docker
          .getNetwork(net)
          .inspect()
          .catch(() => undefined),
      'the network to be made again',
    );
    const wp = await eventually(async () => {
      await notFailed(s.id);
      const info = await inspect(testNames.wpContainer(t.tenant.slug, 'netgone')).catch(() => undefined);
      return info?.State.Running && info.NetworkSettings.Networks[net]?.NetworkID === recreated.Id ? info : undefined;
    }, 'WordPress on the new network');
    expect(wp.HostConfig.NetworkMode).toBe(net);
    await eventually(
      async () =>
        (await inspect(testNames.dbContainer(t.tenant.slug))).NetworkSettings.Networks[net]?.NetworkID === recreated.Id ? true : undefined,
      'the database server on the new network',
    );
    await repaired(s.id);
    expect((await fetch((await site(s.id)).url)).status).toBe(200);
  });

  it('installs WordPress on a running site from before Berth installed it, and moves a site whose URL is not its public URL', async () => {
    const s = await provision('legacy');
    const row = async () =>
      (await h.db.query('SELECT "installedAt", "wordpressUrl" FROM "Site" WHERE id = $1', [s.id])).rows[0] as {
        installedAt: Date | null;
        wordpressUrl: string | null;
      };
    const installed = await row();
    // Control: the site as its own job left it needs nothing.
    expect(installed.installedAt).not.toBeNull();
    expect(installed.wordpressUrl).toBe((await site(s.id)).publicUrl);
    const repairs = async () =>
      (await h.db.query(`SELECT id, steps FROM "Job" WHERE "siteId" = $1 AND kind = 'REPAIR' ORDER BY "createdAt"`, [s.id])).rows as {
        id: string;
        steps: { name: string; detail?: string }[];
      }[];
    expect(await repairs()).toEqual([]);

    // As a site of the version before: never installed by Berth, its WordPress elsewhere.
    await h.db.query(`UPDATE "Site" SET "installedAt" = NULL, "wordpressUrl" = NULL WHERE id = $1`, [s.id]);
    const [repair] = await eventually(async () => ((await repairs()).length === 1 ? repairs() : undefined), 'a repair job');
    expect((await waitForJob(h, t.key, repair.id)).status).toBe('SUCCEEDED');
    const [done] = await repairs();
    expect(done.steps.find((st) => st.name === 'install WordPress')?.detail).toBe('already installed');
    expect((await row()).installedAt).not.toBeNull();

    // WordPress pointed at another URL (a primary domain changed while a job was under way).
    await h.db.query(`UPDATE "Site" SET "wordpressUrl" = 'https://elsewhere.example/' WHERE id = $1`, [s.id]);
    const moved = await eventually(async () => ((await repairs()).length === 2 ? (await repairs())[1] : undefined), 'a second repair job');
    expect((await waitForJob(h, t.key, moved.id)).status).toBe('SUCCEEDED');
    const [, second] = await repairs();
    expect(second.steps.find((st) => st.name === 'move WordPress to its public URL')?.detail).toMatch(/^https:\/\/elsewhere\.example → /);
    expect((await row()).wordpressUrl).toBe((await site(s.id)).publicUrl);
  });

  it('enqueues no repair on what it read before a job of the site finished, and repairs on its next look', async () => {
    const s = await provision('stale');
    const repairs = async () =>
      (
        await h.db.query<{ reason: string }>(`SELECT params->>'reason' AS reason FROM "Job" WHERE "siteId" = $1 AND kind = 'REPAIR'`, [
          s.id,
        ])
      ).rows;
    // The stale read of the race: the row still PROVISIONING (not a rollout drift, so no batch
    // limit holds the repair back), while the site's job finished after the pass began, here
    // an hour from now. Times are the database's (UTC, as Berth writes them), not this process's.
    await h.db.query(`UPDATE "Job" SET "finishedAt" = (now() AT TIME ZONE 'UTC') + interval '1 hour' WHERE "siteId" = $1`, [s.id]);
    await h.db.query(`UPDATE "Site" SET status = 'PROVISIONING' WHERE id = $1`, [s.id]);
    const start = await passes();
    await eventually(async () => ((await passes()) >= start + 2 ? true : undefined), 'two reconciler passes');
    expect(await repairs()).toEqual([]);
    // Control: once the job finished before the passes began, the same row is repaired.
    await h.db.query(`UPDATE "Job" SET "finishedAt" = (now() AT TIME ZONE 'UTC') - interval '1 minute' WHERE "siteId" = $1`, [s.id]);
    const [repair] = await eventually(async () => ((await repairs()).length === 1 ? repairs() : undefined), 'a repair of the stale status');
    expect(repair.reason).toMatch(/PROVISIONING with no job to finish it/);
    await repaired(s.id);
  });

  it("removes, after the grace period, an object labelled as Berth's that no site claims, and reports it", async () => {
    const orphan = await makeOrphan('ghost');
    // The image declares a VOLUME, so the orphan has an anonymous volume: it goes with it.
    const anonymous = (await orphan.inspect()).Mounts.find((m) => m.Type === 'volume')?.Name;
    expect(anonymous).toBeTruthy();
    await eventually(
      async () =>
        (await h.docker
          .getContainer(orphan.id)
          .inspect()
          .catch(() => undefined))
          ? undefined
          : true,
      'the orphan to be removed',
    );
    expect(
      await h.docker
        .getVolume(anonymous!)
        .inspect()
        .catch((e: { statusCode?: number }) => e.statusCode),
    ).toBe(404);
    const { rows } = await h.db.query(`SELECT message FROM "Event" WHERE type = 'orphan.removed' AND data::text LIKE $1`, [
      `%${orphan.id}%`,
    ]);
    expect(rows).toHaveLength(1);
  });
});

describe('updating a site', () => {
  it('replaces the WordPress container with the new settings, keeping volume, database and URL', async () => {
    const s = await provision('upd', { env: { A: '1' } });
    const name = testNames.wpContainer(t.tenant.slug, 'upd');
    const before = await inspect(name);
    const url = (await site(s.id)).url;
    const wrote = await exec(h.docker, name, ['sh', '-c', 'echo kept > /var/www/html/berth-marker.txt']);
    expect(wrote.code).toBe(0);
    const res = await h.http
      .patch(`/v1/sites/${s.id}`)
      .set(auth(t.key))
      .send({ env: { A: '2', B: 'x' }, restartPolicy: 'always', resources: { memoryMb: 128 } });
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
    const name = testNames.wpContainer(t.tenant.slug, 'rollback');
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
    for (const bad of [
      { env: { WORDPRESS_DB_USER: 'x' } },
      { restartPolicy: 'sometimes' },
      { imageTag: 'bad tag!' },
      { resources: { memoryMb: 1 } },
      { name: 'rename' },
    ]) {
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
    await eventually(
      async () =>
        (await site(s.id)).status === 'RUNNING' && (await inspect(testNames.wpContainer(t.tenant.slug, 'cancel-q'))).State.Running
          ? true
          : undefined,
      'the site to run',
    );
    const again = await h.http.post(`/v1/jobs/${stop.body.job.id}/cancel`).set(auth(t.key));
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('JOB_FINISHED');
  });

  it('a running job stops at its next step and the site is FAILED with the reason', async () => {
    // A new tenant's first site waits seconds for its database server's first start:
    // time enough to cancel while the job runs.
    const fresh = await createTenant(h);
    const res = await h.http.post('/v1/sites').set(auth(fresh.key)).send({ name: 'cancel-r' });
    await eventually(
      async () => ((await h.http.get(`/v1/jobs/${res.body.job.id}`).set(auth(fresh.key))).body.status === 'RUNNING' ? true : undefined),
      'the job to run',
      30_000,
    );
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

describe('a tenant whose sealed database password cannot be opened', () => {
  it("does not stop the pass: another tenant's removed container is repaired, orphans are collected, the problem stays with its site", async () => {
    const other = await createTenant(h);
    const res = await h.http.post('/v1/sites').set(auth(other.key)).send({ name: 'locked' });
    expect((await waitForJob(h, other.key, res.body.job.id)).status).toBe('SUCCEEDED');
    const locked = res.body.site as { id: string };
    const fine = await provision('unlocked');
    const {
      rows: [row],
    } = await h.db.query<{ sealed: string }>('SELECT "dbRootPasswordEnc" AS sealed FROM "Tenant" WHERE id = $1', [other.tenant.id]);
    // Same shape, another authentication tag: as if sealed with a key that is lost.
    const parts = row.sealed.split('.');
    parts[2] = Buffer.alloc(16, 1).toString('base64url');
    await h.db.query('UPDATE "Tenant" SET "dbRootPasswordEnc" = $2 WHERE id = $1', [other.tenant.id, parts.join('.')]);
    try {
      const name = testNames.wpContainer(t.tenant.slug, 'unlocked');
      const before = await inspect(name);
      await h.docker.getContainer(testNames.wpContainer(other.tenant.slug, 'locked')).remove({ force: true });
      await h.docker.getContainer(name).remove({ force: true });
      const orphan = await makeOrphan('ghost2');
      await converged(fine.id, name, before.Id);
      await repaired(fine.id);
      await eventually(() => gone(orphan.id), 'the orphan to be collected');
      // The locked tenant's repair needs the password: it fails, and says why on the site.
      const body = await eventually(async () => {
        const b = (await h.http.get(`/v1/sites/${locked.id}`).set(auth(other.key))).body;
        return b.status === 'FAILED' ? b : undefined;
      }, "the locked site's repair to fail");
      expect(body.lastError).toMatch(/unable to authenticate/);
    } finally {
      await h.db.query('UPDATE "Tenant" SET "dbRootPasswordEnc" = $2 WHERE id = $1', [other.tenant.id, row.sealed]);
    }
    // Once the secret can be opened again, its owner retries the site.
    const start = await h.http.post(`/v1/sites/${locked.id}/start`).set(auth(other.key));
    expect((await waitForJob(h, other.key, start.body.job.id)).status).toBe('SUCCEEDED');
    const del = await h.http.delete(`/v1/sites/${locked.id}`).set(auth(other.key));
    expect((await waitForJob(h, other.key, del.body.job.id)).status).toBe('SUCCEEDED');
  });
});

describe('a configuration change that cannot be applied (an image that does not exist)', () => {
  it('removes no container, fails at most a batch of repairs, halts the rollout once, and resumes when the configuration is right again', async () => {
    const { rows: sites } = await h.db.query<{ id: string; name: string }>(
      `SELECT id, name FROM "Site" WHERE "tenantId" = $1 AND status = 'RUNNING' ORDER BY "createdAt"`,
      [t.tenant.id],
    );
    expect(sites.length).toBeGreaterThanOrEqual(4);
    const containerOf = (s: { name: string }) => testNames.wpContainer(t.tenant.slug, s.name);
    const before = new Map(await Promise.all(sites.map(async (s) => [s.id, (await inspect(containerOf(s))).Id] as const)));
    const {
      rows: [{ now: since }],
    } = await h.db.query<{ now: Date }>('SELECT now()');
    const repairsSince = async () =>
      (
        await h.db.query<{ siteId: string; status: string; error: string | null }>(
          `SELECT "siteId", status, error FROM "Job" WHERE kind = 'REPAIR' AND "createdAt" > $1`,
          [since],
        )
      ).rows;
    const halts = async () =>
      (
        await h.db.query<{ siteId: string; message: string }>(
          `SELECT "siteId", message FROM "Event" WHERE type = 'rollout.halted' AND "createdAt" > $1`,
          [since],
        )
      ).rows;

    // The suites of a slot share its database: the sites earlier suites left (older than these,
    // so first in a rollout) are taken out of it, or the halt could be on one of them.
    await h.db.query(
      `UPDATE "Site" SET status = 'DELETED', "liveName" = NULL, "deletedAt" = now() WHERE "tenantId" <> $1 AND status <> 'DELETED'`,
      [t.tenant.id],
    );
    // Two Berth processes on one database and queue would fight: this one replaces the first.
    await h.stop();
    h = await startHarness({ ...settings, BERTH_WORDPRESS_IMAGE: 'berth/does-not-exist:latest' });
    let failedSite: string;
    try {
      const [halt] = await eventually(async () => ((await halts()).length ? halts() : undefined), 'the rollout to halt');
      expect(halt.message).toMatch(/IMAGE_UNAVAILABLE/);
      // Passes go on (an orphan is collected two passes after it appears) and start no more of the rollout.
      const orphan = await makeOrphan('ghost3');
      await eventually(() => gone(orphan.id), 'the orphan to be collected');
      const repairs = await repairsSince();
      expect(repairs.length).toBeGreaterThanOrEqual(1);
      expect(repairs.length).toBeLessThanOrEqual(2);
      await eventually(
        async () => ((await repairsSince()).every((j) => j.status === 'FAILED') ? true : undefined),
        "the rollout's repairs to end",
      );
      for (const j of await repairsSince())
        expect(j.error).toMatch(/IMAGE_UNAVAILABLE: image berth\/does-not-exist:latest [\s\S]*left as it was/);
      expect(await halts()).toHaveLength(1);
      for (const s of sites) {
        const info = await inspect(containerOf(s));
        expect(info.Id).toBe(before.get(s.id));
        expect(info.State.Running).toBe(true);
      }
      // A failed site whose container still runs says both.
      failedSite = halt.siteId;
      const view = await site(failedSite);
      expect(view.status).toBe('FAILED');
      expect(view.lastError).toMatch(/IMAGE_UNAVAILABLE/);
      expect(view.containers.find((c: { role: string }) => c.role === 'wordpress').state).toBe('running');
      expect((await fetch(view.url)).status).toBe(200);
      // Its owner can retry: the apply runs again, and fails the same way without touching the container.
      const start = await h.http.post(`/v1/sites/${failedSite}/start`).set(auth(t.key));
      expect(start.status).toBe(202);
      const retried = await waitForJob(h, t.key, start.body.job.id);
      expect(retried.status).toBe('FAILED');
      expect(retried.error).toMatch(/IMAGE_UNAVAILABLE/);
      expect((await inspect(containerOf(sites.find((s) => s.id === failedSite)!))).Id).toBe(before.get(failedSite));
    } finally {
      await h.stop();
      h = await startHarness(settings);
    }
    // With the configuration right again, the owner's retry succeeds and the rest resumes on its own.
    const start = await h.http.post(`/v1/sites/${failedSite}/start`).set(auth(t.key));
    expect((await waitForJob(h, t.key, start.body.job.id)).status).toBe('SUCCEEDED');
    await eventually(async () => {
      const { rows } = await h.db.query<{ status: string }>(`SELECT status FROM "Site" WHERE id = ANY($1)`, [sites.map((s) => s.id)]);
      return rows.every((r) => r.status === 'RUNNING') ? true : undefined;
    }, 'every site to run again');
    for (const s of sites) expect((await inspect(containerOf(s))).Id).toBe(before.get(s.id));
  });
});
