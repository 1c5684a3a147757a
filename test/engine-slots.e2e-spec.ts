import type { Redis } from 'ioredis';
import { auth, createTenant, startHarness, waitForJob, type Harness } from './harness';
import { TEST_INSTANCE, testNames } from './env';
import { eventually } from './receivers';
import { removeSuiteObjects, testRedis } from './suite-helpers';

/**
 * Site jobs make and start containers a few at a time (BERTH_ENGINE_SLOTS, unset here: twice
 * the CPUs the engine reports); the others wait for a slot, as a step of their own. A job is
 * held waiting deterministically by holding slots from here, as slow jobs would.
 */
let h: Harness;
let redis: Redis;
let slots: number;
const slotKey = (i: number) => `berth:slot:engine:${TEST_INSTANCE}:${i}`;
/** Holds slots `from`..slots-1 (as running jobs would); returns their release. */
async function hold(from: number): Promise<() => Promise<void>> {
  const keys = Array.from({ length: slots - from }, (_, i) => slotKey(from + i));
  for (const k of keys) expect(await redis.set(k, 'held by the test', 'PX', 300_000, 'NX')).toBe('OK');
  return async () => {
    if (keys.length) await redis.del(...keys);
  };
}

beforeAll(async () => {
  h = await startHarness({ BERTH_JOB_ATTEMPTS: '1' });
  redis = testRedis();
  slots = 2 * Number(((await h.docker.info()) as { NCPU: number }).NCPU);
});
afterAll(async () => {
  if (slots) await redis?.del(...Array.from({ length: slots }, (_, i) => slotKey(i)));
  redis?.disconnect();
  await h?.stop();
  await removeSuiteObjects();
});

type Step = {
  name: string;
  status: string;
  startedAt: string;
  finishedAt?: string;
  detail?: string;
  engineCalls?: Record<string, number>;
};
const jobBody = async (key: string, id: string) =>
  (await h.http.get(`/v1/jobs/${id}`).set(auth(key))).body as { status: string; steps: Step[] };
const exists = (name: string) =>
  h.docker
    .getContainer(name)
    .inspect()
    .then(
      () => true,
      () => false,
    );

it("a site job waits for a free engine slot (twice the engine's CPUs) before it touches the engine, then runs", async () => {
  const t = await createTenant(h);
  const release = await hold(0);
  let job = '';
  try {
    const res = await h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'queued' });
    expect(res.status).toBe(202);
    job = res.body.job.id as string;
    const waiting = await eventually(async () => {
      const j = await jobBody(t.key, job);
      return j.status === 'RUNNING' && j.steps.some((s) => s.name === 'wait for an engine slot' && s.status === 'running') ? j : undefined;
    }, 'the job to wait for a slot');
    // While it waits, it has asked nothing of the engine and made nothing.
    expect(waiting.steps.map((s) => s.name)).toEqual(['wait for an engine slot']);
    expect(await exists(testNames.dbContainer(t.tenant.slug))).toBe(false);
    expect(await exists(testNames.wpContainer(t.tenant.slug, 'queued'))).toBe(false);
  } finally {
    await release();
  }
  // The slot free, the job takes it and runs to the end (the control: the same containers exist).
  await eventually(async () => {
    const sites = (await h.http.get('/v1/sites').set(auth(t.key))).body as { status: string }[];
    return sites.some((s) => s.status === 'RUNNING') ? true : undefined;
  }, 'the site to run');
  expect(await exists(testNames.dbContainer(t.tenant.slug))).toBe(true);
  expect(await exists(testNames.wpContainer(t.tenant.slug, 'queued'))).toBe(true);
  // It waited for one of twice the engine's CPUs, and gave it back when it ended.
  const waited = (await jobBody(t.key, job)).steps.find((s) => s.name === 'wait for an engine slot');
  expect(waited).toMatchObject({ status: 'succeeded', detail: `${slots} site jobs at once on this engine` });
  await eventually(
    async () => ((await redis.exists(...Array.from({ length: slots }, (_, i) => slotKey(i)))) === 0 ? true : undefined),
    'the slots to be free',
  );
});

it('with one slot free, two site jobs running at once never make containers at the same time', async () => {
  const [a, b] = await Promise.all([createTenant(h), createTenant(h)]);
  const release = await hold(1); // every slot but the first, as running jobs would
  const posted = await Promise.all([a, b].map((t) => h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'www' })));
  const jobs = await Promise.all(posted.map((r, i) => waitForJob(h, [a, b][i].key, r.body.job.id))).finally(release);
  expect(jobs.map((j) => j.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
  const bodies = await Promise.all(posted.map((r, i) => jobBody([a, b][i].key, r.body.job.id)));
  // Control: the two jobs were running at the same time, so their engine work could have overlapped...
  const runs = await Promise.all(
    posted.map(
      async (r, i) =>
        (await h.http.get(`/v1/jobs/${r.body.job.id}`).set(auth([a, b][i].key))).body as { startedAt: string; finishedAt: string },
    ),
  );
  const [first, second] = [...runs].sort((x, y) => Date.parse(x.startedAt) - Date.parse(y.startedAt));
  expect(Date.parse(second.startedAt)).toBeLessThan(Date.parse(first.finishedAt));
  // ...and one of them waited for the slot while the other made its containers.
  const waited = bodies.filter((j) => j.steps.some((s) => s.name === 'wait for an engine slot'));
  expect(waited).toHaveLength(1);
  // The engine steps (those that called the engine) of one job all ended before the other's began.
  const span = (j: { steps: Step[] }) => {
    const engine = j.steps.filter((s) => s.engineCalls && s.name !== 'wait for an engine slot');
    expect(engine.length).toBeGreaterThan(0);
    return [Math.min(...engine.map((s) => Date.parse(s.startedAt))), Math.max(...engine.map((s) => Date.parse(s.finishedAt!)))];
  };
  const [x, y] = bodies.map(span).sort((p, q) => p[0] - q[0]);
  expect(x[1]).toBeLessThanOrEqual(y[0]);
});
