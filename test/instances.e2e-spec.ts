/**
 * Two Berth installations on one Docker Engine: each has its own PostgreSQL database, Redis
 * database, subnet pool, port range and BERTH_INSTANCE, and they share a tenant slug. Neither
 * may touch the other's objects; an object of another instance under one of this instance's
 * names fails the job with a clash instead of being replaced.
 */
import type Docker from 'dockerode';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { names } from '../src/sites/site-plan';
import { removeInstanceObjects } from './docker-cleanup';
import { TEST_INSTANCE, TEST_SLOT, testRedisUrl } from './env';
import { auth, createTenant, startHarness, uniqueSlug, waitForJob, type Harness } from './harness';
import { removeSuiteObjects } from './suite-helpers';

const INSTANCE_B = `${TEST_INSTANCE}b`;
/** Labelled as a third installation that runs no process here: nothing but this suite touches its objects. */
const FOREIGN = `${TEST_INSTANCE}-other`;

const databaseB = (() => {
  const u = new URL(process.env.DATABASE_URL as string);
  u.pathname = `${u.pathname}_b`;
  return u;
})();
const redisB = (() => {
  // Slots use Redis databases 3-12; the second instance takes one of the last three.
  const u = new URL(testRedisUrl());
  u.pathname = `/${13 + (TEST_SLOT % 3)}`;
  return u.toString();
})();

async function adminQuery(sql: string): Promise<void> {
  const admin = new Client({ connectionString: process.env.BERTH_TEST_ADMIN_DATABASE_URL ?? process.env.DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

async function flushRedisB(): Promise<void> {
  const r = new Redis(redisB);
  await r.flushdb();
  r.disconnect();
}

let a: Harness;
let b: Harness | undefined;
const slug = uniqueSlug('twin');
const clashSlug = uniqueSlug('clash');

beforeAll(async () => {
  a = await startHarness();
  await removeInstanceObjects(a.docker, INSTANCE_B);
  await removeInstanceObjects(a.docker, FOREIGN);
  await adminQuery(`DROP DATABASE IF EXISTS "${databaseB.pathname.slice(1)}" WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE "${databaseB.pathname.slice(1)}"`);
  await flushRedisB();
  b = await startHarness({
    BERTH_INSTANCE: INSTANCE_B,
    DATABASE_URL: databaseB.toString(),
    REDIS_URL: redisB,
    BERTH_SUBNET_POOL: `10.${100 + TEST_SLOT}.0.0/16`,
    BERTH_PORT_RANGE: `${32000 + TEST_SLOT * 100}-${32099 + TEST_SLOT * 100}`,
  });
});

afterAll(async () => {
  await b?.stop();
  await a.stop();
  // Processes first, so no reconciler puts anything back; then every object this suite made.
  for (const t of [slug, clashSlug]) await removeInstanceObjects(a.docker, TEST_INSTANCE, { 'berth.tenant': t });
  await removeInstanceObjects(a.docker, INSTANCE_B);
  await removeInstanceObjects(a.docker, FOREIGN);
  await adminQuery(`DROP DATABASE IF EXISTS "${databaseB.pathname.slice(1)}" WITH (FORCE)`);
  await flushRedisB();
  // Instance A's sites live in the suites' shared database: they go, so no later suite makes them again.
  await removeSuiteObjects();
});

async function provisionOn(h: Harness, key: string, name: string): Promise<{ id: string; url: string }> {
  const res = await h.http.post('/v1/sites').set(auth(key)).send({ name });
  expect(res.status).toBe(202);
  const job = await waitForJob(h, key, res.body.job.id);
  expect(job).toMatchObject({ status: 'SUCCEEDED', error: null });
  const site = (await h.http.get(`/v1/sites/${res.body.site.id}`).set(auth(key))).body;
  expect(site.status).toBe('RUNNING');
  return { id: site.id, url: site.url };
}

const inspect = (h: Harness, name: string) => h.docker.getContainer(name).inspect();

describe('two instances on one engine', () => {
  it('with the same tenant slug, each keeps its own database server and both sites stay up', async () => {
    const ta = await createTenant(a, slug);
    const tb = await createTenant(b!, slug);

    const siteA = await provisionOn(a, ta.key, 'www');
    const dbA = await inspect(a, names.dbContainer(TEST_INSTANCE, slug));
    const wpA = await inspect(a, names.wpContainer(TEST_INSTANCE, slug, 'www'));

    const siteB = await provisionOn(b!, tb.key, 'www');
    const dbB = await inspect(a, names.dbContainer(INSTANCE_B, slug));

    // Positive control: the second instance made its own objects, labelled as its own.
    expect(dbB.Id).not.toBe(dbA.Id);
    expect(dbA.Config.Labels['berth.instance']).toBe(TEST_INSTANCE);
    expect(dbB.Config.Labels['berth.instance']).toBe(INSTANCE_B);
    expect(dbB.Mounts.map((m) => m.Name)).toEqual([names.dbVolume(INSTANCE_B, slug)]);
    expect(Object.keys(dbB.NetworkSettings.Networks)).toEqual([names.network(INSTANCE_B, slug)]);

    // The first instance's database server and site were not replaced, restarted or stopped.
    for (const [before, name] of [
      [dbA, names.dbContainer(TEST_INSTANCE, slug)],
      [wpA, names.wpContainer(TEST_INSTANCE, slug, 'www')],
    ] as const) {
      const now = await inspect(a, name);
      expect(now.Id).toBe(before.Id);
      expect(now.State.Running).toBe(true);
      expect(now.State.StartedAt).toBe(before.State.StartedAt);
    }
    expect((await inspect(a, names.dbContainer(INSTANCE_B, slug))).State.Running).toBe(true);

    for (const [h, key, site] of [
      [a, ta.key, siteA],
      [b!, tb.key, siteB],
    ] as const) {
      expect((await h.http.get(`/v1/sites/${site.id}`).set(auth(key))).body.status).toBe('RUNNING');
      const res = await fetch(site.url, { redirect: 'manual' });
      await res.arrayBuffer();
      expect(res.status).toBeLessThan(500);
    }
    expect(siteA.url).not.toBe(siteB.url);
  });

  it("fails a job with a clash, and touches nothing, when another instance's object holds one of its names", async () => {
    const name = names.dbContainer(TEST_INSTANCE, clashSlug);
    const foreign = await a.docker.createContainer({
      name,
      Image: 'berth/busybox:latest',
      Cmd: ['sleep', '3600'],
      Labels: {
        'berth.managed-by': 'berth',
        'berth.instance': FOREIGN,
        'berth.tenant': clashSlug,
        'berth.role': 'db',
        'berth.spec-hash': 'foreign',
      },
    });
    await foreign.start();
    const before: Docker.ContainerInspectInfo = await foreign.inspect();

    const t = await createTenant(a, clashSlug);
    const res = await a.http.post('/v1/sites').set(auth(t.key)).send({ name: 'www' });
    expect(res.status).toBe(202);
    const job = await waitForJob(a, t.key, res.body.job.id);
    expect(job.status).toBe('FAILED');
    expect(job.error).toContain('DOCKER_OBJECT_CLASH');
    expect(job.error).toContain(`container ${name}`);
    expect(job.error).toContain(`"${FOREIGN}"`);
    // The database server's step failed with the clash (WordPress's, beside it, may have been stopped by it).
    expect(job.steps.find((s) => s.name === 'database server')).toMatchObject({ status: 'failed' });
    expect(job.steps.find((s) => s.name === 'database server')?.error).toContain('DOCKER_OBJECT_CLASH');
    const site = (await a.http.get(`/v1/sites/${res.body.site.id}`).set(auth(t.key))).body;
    expect(site).toMatchObject({ status: 'FAILED' });
    expect(site.lastError).toContain('DOCKER_OBJECT_CLASH');

    const after = await foreign.inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.Running).toBe(true);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    expect(after.Config.Labels).toEqual(before.Config.Labels);
    // Nothing of this instance took the name or attached itself to the foreign container.
    expect(Object.keys(after.NetworkSettings.Networks)).toEqual(Object.keys(before.NetworkSettings.Networks));
  });
});
