import type { Client } from 'graphql-ws';
import { auth, createTenant, startHarness, waitForJob, type Harness } from './harness';
import { removeSuiteObjects, wsClient as sharedWsClient } from './suite-helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
  await removeSuiteObjects();
});

const wsClient = (key?: string): Client => sharedWsClient(h, key);

/** Collects subscription payloads until `until` says stop; rejects on error. */
function collect<T>(
  client: Client,
  query: string,
  until: (v: T) => boolean,
  timeoutMs = 120_000,
): { done: Promise<T[]>; ready: Promise<void> } {
  const seen: T[] = [];
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const done = new Promise<T[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen)}`)), timeoutMs);
    const stop = client.subscribe<T>(
      { query },
      {
        next: (v) => {
          if (v.errors) {
            clearTimeout(timer);
            reject(new Error(JSON.stringify(v.errors)));
            return;
          }
          seen.push(v.data as T);
          if (until(v.data as T)) {
            clearTimeout(timer);
            stop();
            resolve(seen);
          }
        },
        error: (e) => {
          clearTimeout(timer);
          // A closed socket reports a CloseEvent, whose code and reason JSON.stringify drops.
          const close = e as { code?: unknown; reason?: unknown };
          reject(
            e instanceof Error
              ? e
              : new Error(typeof close.code === 'number' ? `closed ${close.code} ${String(close.reason)}` : JSON.stringify(e)),
          );
        },
        complete: () => resolve(seen),
      },
    );
    client.on('connected', () => setTimeout(ready, 100));
  });
  return { done, ready: readyP };
}

describe('GraphQL subscriptions over graphql-ws', () => {
  it('jobUpdated and siteUpdated follow a provisioning job to the end', async () => {
    const t = await createTenant(h);
    const res = await h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'live' });
    expect(res.status).toBe(202);
    const client = wsClient(t.key);
    try {
      const jobs = collect<{ jobUpdated: { status: string; progress: number } }>(
        client,
        `subscription { jobUpdated(id: "${res.body.job.id}") { status progress } }`,
        (v) => v.jobUpdated.status === 'SUCCEEDED',
      );
      const sites = collect<{ siteUpdated: { status: string } }>(
        client,
        `subscription { siteUpdated(id: "${res.body.site.id}") { status } }`,
        (v) => v.siteUpdated.status === 'RUNNING',
      );
      // The same job with its steps selected: a step starting changes the steps, not the progress.
      const detailed = collect<{ jobUpdated: { status: string; progress: number; steps: { name: string; status: string }[] } }>(
        client,
        `subscription { jobUpdated(id: "${res.body.job.id}") { status progress steps { name status } } }`,
        (v) => v.jobUpdated.status === 'SUCCEEDED',
      );
      const [jobUpdates, siteUpdates, detailedUpdates] = await Promise.all([jobs.done, sites.done, detailed.done]);
      expect(jobUpdates.at(-1)!.jobUpdated).toEqual({ status: 'SUCCEEDED', progress: 100 });
      expect(jobUpdates.length).toBeGreaterThan(1);
      expect(siteUpdates.at(-1)!.siteUpdated.status).toBe('RUNNING');
      // Each change sent once: no message repeats the one before it, for either selection...
      const repeats = <T>(list: T[]) => list.filter((v, i) => i > 0 && JSON.stringify(v) === JSON.stringify(list[i - 1])).length;
      expect(repeats(jobUpdates)).toBe(0);
      expect(repeats(detailedUpdates)).toBe(0);
      expect(repeats(siteUpdates)).toBe(0);
      // ...while the worker did send notices that leave status and progress as they were
      // (the detailed subscriber got them as step changes): the first could have repeated.
      const asShort = detailedUpdates.map((u) => ({ jobUpdated: { status: u.jobUpdated.status, progress: u.jobUpdated.progress } }));
      expect(repeats(asShort)).toBeGreaterThan(0);
    } finally {
      await client.dispose();
    }
    expect((await waitForJob(h, t.key, res.body.job.id)).status).toBe('SUCCEEDED');
  });

  it('jobUpdated and siteUpdated send the state as it is once subscribed: a job ended before is seen ended', async () => {
    const t = await createTenant(h);
    const res = await h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'ended' });
    expect(res.status).toBe(202);
    expect((await waitForJob(h, t.key, res.body.job.id)).status).toBe('SUCCEEDED');
    const client = wsClient(t.key);
    try {
      // Nothing is published for this job or site any more: only the subscription's own first
      // read can answer (before, these waited until their timeout).
      const job = collect<{ jobUpdated: { status: string; progress: number } }>(
        client,
        `subscription { jobUpdated(id: "${res.body.job.id}") { status progress } }`,
        () => true,
        10_000,
      );
      const site = collect<{ siteUpdated: { status: string } }>(
        client,
        `subscription { siteUpdated(id: "${res.body.site.id}") { status } }`,
        () => true,
        10_000,
      );
      expect(await job.done).toEqual([{ jobUpdated: { status: 'SUCCEEDED', progress: 100 } }]);
      expect(await site.done).toEqual([{ siteUpdated: { status: 'RUNNING' } }]);
    } finally {
      await client.dispose();
    }
  });

  it("refuses a connection without a valid key, and another tenant's job as not found", async () => {
    const anonymous = wsClient();
    // The coded close, not the helper's own timeout ("timed out; ..."), must end it.
    await expect(
      collect(anonymous, 'subscription { jobUpdated(id: "00000000-0000-0000-0000-000000000000") { status } }', () => true, 10_000).done,
    ).rejects.toThrow(/^closed 4401 UNAUTHENTICATED$/);
    await anonymous.dispose();

    const a = await createTenant(h);
    const b = await createTenant(h);
    const res = await h.http.post('/v1/sites').set(auth(b.key)).send({ name: 'hidden' });
    const client = wsClient(a.key);
    try {
      await expect(
        collect(client, `subscription { jobUpdated(id: "${res.body.job.id}") { status } }`, () => true, 10_000).done,
      ).rejects.toThrow(/JOB_NOT_FOUND/);
      await expect(
        collect(client, `subscription { siteUpdated(id: "${res.body.site.id}") { status } }`, () => true, 10_000).done,
      ).rejects.toThrow(/SITE_NOT_FOUND/);
    } finally {
      await client.dispose();
    }
    await waitForJob(h, b.key, res.body.job.id);
  });
});

describe('a revoked key', () => {
  it('loses what it holds open at once: its graphql-ws connection (closed 4403) and its event stream; another key keeps its own', async () => {
    const a = await createTenant(h);
    const issued = await h.http.post(`/v1/tenants/${a.tenant.id}/api-keys`).set(auth(a.key)).send({ name: 'leaked' });
    expect(issued.status).toBe(201);
    const leaked = issued.body as { id: string; key: string };
    const res = await h.http.post('/v1/sites').set(auth(a.key)).send({ name: 'followed' });
    await waitForJob(h, a.key, res.body.job.id);
    const query = `subscription { siteEvents(siteId: "${res.body.site.id}") { type } }`;

    const revokedWs = wsClient(leaked.key);
    const keptWs = wsClient(a.key);
    const stream = await fetch(`${h.berth.url}/v1/events/stream`, { headers: auth(leaked.key) });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    try {
      const revokedSub = collect<{ siteEvents: { type: string } }>(revokedWs, query, () => false, 60_000);
      const keptSub = collect<{ siteEvents: { type: string } }>(keptWs, query, () => true, 60_000);
      await Promise.all([revokedSub.ready, keptSub.ready]);
      expect(new TextDecoder().decode((await reader.read()).value)).toContain(': connected');

      expect((await h.http.delete(`/v1/api-keys/${leaked.id}`).set(auth(a.key))).status).toBe(200);
      await expect(revokedSub.done).rejects.toThrow(/^closed 4403 API key revoked$/);
      // The event stream ends too (no more bytes, not the test's timeout).
      const ended = await Promise.race([
        (async () => {
          for (;;) if ((await reader.read()).done) return 'ended';
        })(),
        new Promise((r) => setTimeout(() => r('still open'), 15_000)),
      ]);
      expect(ended).toBe('ended');

      // Control: the tenant's other key still follows the site: the restart's events reach it.
      expect((await h.http.post(`/v1/sites/${res.body.site.id}/restart`).set(auth(a.key))).status).toBe(202);
      expect((await keptSub.done).length).toBeGreaterThan(0);
    } finally {
      await reader.cancel().catch(() => undefined);
      await revokedWs.dispose();
      await keptWs.dispose();
    }
  });
});
