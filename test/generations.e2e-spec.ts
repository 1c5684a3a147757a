import { Queue } from 'bullmq';
import IORedis, { type Redis } from 'ioredis';
import { auth, createTenant, envOf, startHarness, waitForJob, type Harness } from './harness';
import { testNames, testRedisUrl } from './env';
import { SITES_QUEUE } from '../src/jobs/job.types';
import { eventually } from './receivers';
import { provision, removeSuiteObjects, testRedis } from './suite-helpers';

/**
 * Each job owns the generation it was created for: cancelling a queued job, rolling back a
 * failed update or finishing a job that newer requests overtook must never write over them.
 *
 * A job is held RUNNING deterministically by holding its tenant's lock from here: the job's
 * first step ("tenant network") waits for it, so the requests sent
 * meanwhile queue behind the running job, as they would behind a slow one.
 */
let h: Harness;
let t: Awaited<ReturnType<typeof createTenant>>;
let redis: Redis;

beforeAll(async () => {
  h = await startHarness({ BERTH_JOB_ATTEMPTS: '1' });
  t = await createTenant(h);
  redis = testRedis();
});
afterAll(async () => {
  redis?.disconnect();
  // Berth stops first, so that nothing recreates what is removed next.
  await h?.stop();
  // The suite's sites leave the database too, so no later suite's reconciler makes them again.
  await removeSuiteObjects();
});

const site = (id: string) =>
  h.http
    .get(`/v1/sites/${id}`)
    .set(auth(t.key))
    .then((r) => r.body);
const jobOf = (res: { status: number; body: { job?: { id: string } } }) => {
  if (res.status !== 202 || !res.body.job) throw new Error(`expected 202 with a job: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.job.id;
};

/** Holds the tenant's lock, so that a job of the tenant stays RUNNING in its first step. */
async function holdTenant(): Promise<() => Promise<void>> {
  const key = `berth:lock:tenant:${t.tenant.id}`;
  expect(await redis.set(key, 'held-by-the-test', 'PX', 120_000, 'NX')).toBe('OK');
  return async () => {
    await redis.del(key);
  };
}

/**
 * Until the job is blocked in its first step (the tenant's lock is held), not merely RUNNING:
 * before its first step a job checks its generation, and a request sent in between would
 * overtake it there (which the resumption test below makes happen on purpose).
 */
async function inFirstStep(jobId: string): Promise<void> {
  await eventually(
    async () => {
      const body = (await h.http.get(`/v1/jobs/${jobId}`).set(auth(t.key))).body as { steps?: { name: string; status: string }[] };
      return body.steps?.some((x) => x.name === 'tenant network' && x.status === 'running') ? true : undefined;
    },
    `job ${jobId} to be in its first step`,
    30_000,
    50,
  );
}

async function eventsOf(siteId: string): Promise<{ type: string; message: string; data: unknown }[]> {
  return (await h.http.get(`/v1/sites/${siteId}/events`).set(auth(t.key))).body;
}

describe('cancelling a queued job', () => {
  it('undoes it when nothing came after it: the running job before it still owns the site', async () => {
    const s = await provision(h, t.key, { name: 'undo-ok' });
    const release = await holdTenant();
    let restart: string;
    try {
      restart = jobOf(await h.http.post(`/v1/sites/${s.id}/restart`).set(auth(t.key)));
      await inFirstStep(restart);
      const stop = jobOf(await h.http.post(`/v1/sites/${s.id}/stop`).set(auth(t.key)));
      expect((await h.http.post(`/v1/jobs/${stop}/cancel`).set(auth(t.key))).status).toBe(202);
      expect((await waitForJob(h, t.key, stop)).status).toBe('CANCELLED');
      const { rows } = await h.db.query(
        'SELECT s."desiredState", s.generation, j.generation AS "jobGeneration" FROM "Site" s JOIN "Job" j ON j."siteId" = s.id WHERE j.id = $1',
        [restart],
      );
      expect(rows[0]).toMatchObject({ desiredState: 'RUNNING', generation: rows[0].jobGeneration });
    } finally {
      await release();
    }
    const job = await waitForJob(h, t.key, restart);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.steps.map((x) => x.name)).toContain('wait for HTTP');
    expect(await site(s.id)).toMatchObject({ status: 'RUNNING' });
  });

  it("refuses a site's deletion once an attempt has begun (its files may be gone), and cancels one that has not", async () => {
    const s = await provision(h, t.key, { name: 'undo-delete' });
    const release = await holdTenant();
    let restart: string, del: string;
    try {
      restart = jobOf(await h.http.post(`/v1/sites/${s.id}/restart`).set(auth(t.key)));
      await inFirstStep(restart);
      // Queued behind the restart, which holds the site.
      del = jobOf(await h.http.delete(`/v1/sites/${s.id}`).set(auth(t.key)));
      // As after a first attempt that failed (it removes the containers and the files volume
      // first) and waits for its next: an undo would bring the site back RUNNING without them.
      await h.db.query('UPDATE "Job" SET attempts = 1 WHERE id = $1', [del]);
      const refused = await h.http.post(`/v1/jobs/${del}/cancel`).set(auth(t.key));
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ code: 'JOB_NOT_CANCELLABLE' });
      expect(refused.body.detail).toMatch(/deletion that has started/);
      expect((await h.db.query('SELECT status, "desiredState" FROM "Site" WHERE id = $1', [s.id])).rows[0]).toEqual({
        status: 'DELETING',
        desiredState: 'ABSENT',
      });
      // Control: the same deletion before any attempt is cancelled, and undone.
      await h.db.query('UPDATE "Job" SET attempts = 0 WHERE id = $1', [del]);
      expect((await h.http.post(`/v1/jobs/${del}/cancel`).set(auth(t.key))).status).toBe(202);
      expect((await waitForJob(h, t.key, del)).status).toBe('CANCELLED');
      expect((await h.db.query('SELECT "desiredState" FROM "Site" WHERE id = $1', [s.id])).rows[0].desiredState).toBe('RUNNING');
    } finally {
      await release();
    }
    expect((await waitForJob(h, t.key, restart)).status).toBe('SUCCEEDED');
    await eventually(async () => ((await site(s.id)).status === 'RUNNING' ? true : undefined), 'the site to run');
  });

  it('changes nothing when a newer request came after it: stop, delete, cancel the stop, and the site ends deleted', async () => {
    const s = await provision(h, t.key, { name: 'undo-stale' });
    const release = await holdTenant();
    let restart: string, stop: string, del: string;
    try {
      restart = jobOf(await h.http.post(`/v1/sites/${s.id}/restart`).set(auth(t.key)));
      await inFirstStep(restart);
      stop = jobOf(await h.http.post(`/v1/sites/${s.id}/stop`).set(auth(t.key)));
      del = jobOf(await h.http.delete(`/v1/sites/${s.id}`).set(auth(t.key)));
      expect((await h.http.post(`/v1/jobs/${stop}/cancel`).set(auth(t.key))).status).toBe(202);
      expect((await waitForJob(h, t.key, stop)).status).toBe('CANCELLED');
      const { rows } = await h.db.query('SELECT "desiredState" FROM "Site" WHERE id = $1', [s.id]);
      expect(rows[0].desiredState).toBe('ABSENT');
    } finally {
      await release();
    }
    expect((await waitForJob(h, t.key, restart)).status).toBe('SUCCEEDED');
    expect(await waitForJob(h, t.key, del)).toMatchObject({ status: 'SUCCEEDED', error: null });
    expect(await site(s.id)).toMatchObject({ status: 'DELETED', url: null });
    expect(await h.docker.listContainers({ all: true, filters: { label: [`berth.site-id=${s.id}`] } })).toEqual([]);
    const events = await eventsOf(s.id);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['job.undo.skipped', 'site.deleted']));
  });
});

/**
 * A restart overtaken by a stop: the stop stays queued (the queue is paused, as BullMQ does,
 * in Redis) while the restart, already running, sees the stop's generation after its first
 * step and ends as superseded. Then `cancel` cancels the stop before it ran.
 */
async function overtakenRestart(siteId: string, cancel: (stop: string) => Promise<void>) {
  const connection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
  const queue = new Queue(SITES_QUEUE, { connection });
  const release = await holdTenant();
  try {
    const restart = jobOf(await h.http.post(`/v1/sites/${siteId}/restart`).set(auth(t.key)));
    await inFirstStep(restart);
    await queue.pause();
    const stop = jobOf(await h.http.post(`/v1/sites/${siteId}/stop`).set(auth(t.key)));
    await release();
    const overtaken = await waitForJob(h, t.key, restart);
    expect(overtaken.status).toBe('SUCCEEDED');
    expect(overtaken.steps.map((x) => x.name)).toEqual(['tenant network', 'superseded']);
    const overtakenGeneration: number = (await h.db.query('SELECT generation FROM "Job" WHERE id = $1', [restart])).rows[0].generation;
    expect((await h.http.get(`/v1/jobs/${stop}`).set(auth(t.key))).body.status).toBe('QUEUED');
    await cancel(stop);
    return { restart, stop, overtakenGeneration };
  } finally {
    await release();
    await queue.resume();
    await queue.close();
    connection.disconnect();
  }
}

/** The restart run again, as the `job.resumed` event names it, applied the site at the overtaken generation. */
async function expectRunAgain(siteId: string, o: Awaited<ReturnType<typeof overtakenRestart>>, within = 30_000) {
  const resumed = await eventually(
    async () => {
      const found = (await eventsOf(siteId)).filter((e) => e.type === 'job.resumed');
      return found.length ? found : undefined;
    },
    'the restart to run again',
    within,
  );
  expect(resumed).toHaveLength(1);
  const data = resumed[0].data as { jobId: string; resumedJobId: string; cancelledJobId: string };
  expect(data).toMatchObject({ resumedJobId: o.restart, cancelledJobId: o.stop });
  const again = await waitForJob(h, t.key, data.jobId);
  expect(again).toMatchObject({ kind: 'RESTART', status: 'SUCCEEDED', error: null });
  expect(again.steps.map((x) => x.name)).toContain('wait for HTTP');
  expect(await site(siteId)).toMatchObject({ status: 'RUNNING' });
  const { rows } = await h.db.query('SELECT "desiredState", generation FROM "Site" WHERE id = $1', [siteId]);
  expect(rows[0]).toEqual({ desiredState: 'RUNNING', generation: o.overtakenGeneration });
}

describe('a job overtaken by a request that is then cancelled', () => {
  it('runs again: the restart stopped as superseded by a stop, the stop is cancelled before it ran, and a new restart applies the site', async () => {
    const s = await provision(h, t.key, { name: 'resume' });
    const o = await overtakenRestart(s.id, async (stop) => {
      expect((await h.http.post(`/v1/jobs/${stop}/cancel`).set(auth(t.key))).status).toBe(202);
    });
    // The cancellation itself ran the restart again: the event is there as soon as it answered.
    expect((await eventsOf(s.id)).map((e) => e.type)).toContain('job.resumed');
    await expectRunAgain(s.id, o);
  });

  it("runs again when the cancellation died after its undo: the worker's sweeper finds the lost resumption", async () => {
    const s = await provision(h, t.key, { name: 'resume-lost' });
    const o = await overtakenRestart(s.id, async (stop) => {
      // What the cancellation commits (the job's end and its undo, in one transaction), and
      // then nothing: its process is gone before it runs the overtaken restart again.
      const { rows } = await h.db.query(
        `WITH ended AS (UPDATE "Job" SET status = 'CANCELLED', "finishedAt" = now(), error = 'cancelled'
                         WHERE id = $1 AND status = 'QUEUED' RETURNING "siteId", generation)
         UPDATE "Site" s SET "desiredState" = 'RUNNING', generation = ended.generation - 1
         FROM ended WHERE s.id = ended."siteId" AND s.generation = ended.generation RETURNING s.generation`,
        [stop],
      );
      expect(rows).toHaveLength(1);
    });
    // The sweeper runs every 15 s (BERTH_STALLED_INTERVAL_MS × 2, at most 15 s).
    await expectRunAgain(s.id, o, 45_000);
  });
});

describe('an update that fails', () => {
  it('does not roll back over a later update: the later settings stay and are applied', async () => {
    const s = await provision(h, t.key, { name: 'upd-stale', env: { A: '1' } });
    const name = testNames.wpContainer(t.tenant.slug, 'upd-stale');
    const release = await holdTenant();
    let bad: string, good: string;
    try {
      bad = jobOf(await h.http.patch(`/v1/sites/${s.id}`).set(auth(t.key)).send({ imageTag: 'does-not-exist' }));
      await inFirstStep(bad);
      good = jobOf(
        await h.http
          .patch(`/v1/sites/${s.id}`)
          .set(auth(t.key))
          .send({ imageTag: 'latest', env: { B: '2' } }),
      );
    } finally {
      await release();
    }
    const [first, second] = [await waitForJob(h, t.key, bad), await waitForJob(h, t.key, good)];
    // The later settings are what the site has and runs, whatever became of the first update.
    expect(await site(s.id)).toMatchObject({ status: 'RUNNING', imageTag: 'latest', env: { B: '2' } });
    const info = await h.docker.getContainer(name).inspect();
    expect(envOf(info)).toMatchObject({ B: '2' });
    expect(envOf(info).A).toBeUndefined();
    expect(second).toMatchObject({ status: 'SUCCEEDED', error: null });
    // The first update found itself overtaken before it changed anything: it ends at once.
    expect(first).toMatchObject({ status: 'SUCCEEDED', error: null });
    expect(first.steps.map((x) => x.name)).not.toContain('roll back to the previous settings');
    expect(first.steps.at(-1)).toMatchObject({ name: 'superseded', status: 'succeeded' });
    expect(info.State.Running).toBe(true);
  });

  it('rolls back to the previous settings when nothing came after it', async () => {
    const s = await provision(h, t.key, { name: 'upd-own', env: { A: '1' } });
    const res = await h.http
      .patch(`/v1/sites/${s.id}`)
      .set(auth(t.key))
      .send({ imageTag: 'does-not-exist', env: { A: '2' } });
    const job = await waitForJob(h, t.key, jobOf(res));
    expect(job.status).toBe('FAILED');
    expect(job.error).toMatch(/rolled back/);
    expect(job.steps.map((x) => x.name)).toContain('roll back to the previous settings');
    expect(await site(s.id)).toMatchObject({ status: 'RUNNING', imageTag: null, env: { A: '1' } });
    expect(envOf(await h.docker.getContainer(testNames.wpContainer(t.tenant.slug, 'upd-own')).inspect())).toMatchObject({ A: '1' });
  });
});

describe('a job whose site lock is lost', () => {
  it('stops at once, runs no further step and leaves the site to the new holder', async () => {
    const s = await provision(h, t.key, { name: 'lock-lost' });
    const release = await holdTenant();
    const lockKey = `berth:lock:site:${s.id}`;
    try {
      const restart = jobOf(await h.http.post(`/v1/sites/${s.id}/restart`).set(auth(t.key)));
      // Before its first step a job also checks its lock, and would stop there instead.
      await inFirstStep(restart);
      // Another holder takes the site's lock (as after a long pause of this worker).
      await redis.set(lockKey, 'another-holder', 'PX', 120_000);
      // The job stops while its step is still blocked, not when the step would have ended.
      const job = await waitForJob(h, t.key, restart, 45_000);
      expect(job.status).toBe('FAILED');
      expect(job.error).toMatch(/lost lock/);
      expect(job.steps.map((x) => x.name)).toEqual(['tenant network']);
      expect(await site(s.id)).toMatchObject({ status: 'RUNNING', lastError: null });
      expect(await redis.get(lockKey)).toBe('another-holder');
    } finally {
      await redis.del(lockKey);
      await release();
    }
  });
});
