import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { edgeAdmin, EDGE_ADMIN, edgeRoot, viaEdge as edge } from './edge-client';
import { BASE_DOMAIN, EDGE_HTTPS_PORT } from './env';
import { auth, createTenant, startHarness, waitForJob, type Harness } from './harness';
import { eventually } from './receivers';
import { provision, removeSuiteObjects, testRedis } from './suite-helpers';

/** The real edge of this test slot (Caddy, started by scripts/test.sh), driven by the Berth under test. */
const ADMIN = EDGE_ADMIN;

let h: Harness;
let t: Awaited<ReturnType<typeof createTenant>>;
let root: string;
const redis = testRedis();

beforeAll(async () => {
  h = await startHarness({
    BERTH_EDGE_SYNC_MS: '1000',
    BERTH_JOB_ATTEMPTS: '1',
    BERTH_PROBE_INTERVAL_MS: '1000',
    BERTH_PROBE_FAILURES: '5',
  });
  t = await createTenant(h);
  root = await edgeRoot();
});
afterAll(async () => {
  redis.disconnect();
  await h.stop();
  await removeSuiteObjects();
});

const hostnameOf = (site: string) => `${site}-${t.tenant.slug}.${BASE_DOMAIN}`;
const view = (id: string) =>
  h.http
    .get(`/v1/sites/${id}`)
    .set(auth(t.key))
    .then((r) => r.body as { url: string; hostname: string; publicUrl: string; status: string });
const admin = edgeAdmin;
const viaEdge = (hostname: string, path = '/', tls = true, headers: Record<string, string> = {}) =>
  edge(root, hostname, path, tls, headers);
/** Served: the site's own answer through the edge (not a failed handshake, not the edge's "no site here"). */
const served = (hostname: string) => viaEdge(hostname).then((a) => (a.status === 200 ? a : undefined));

/** Stops the edge (as a crash would) and waits until its admin API no longer answers. */
async function stopEdge() {
  await admin('POST', '/stop');
  await eventually(
    () =>
      fetch(`${ADMIN}/config/`).then(
        () => undefined,
        () => true,
      ),
    'the edge to stop',
  );
}
const eventsSince = async (siteId: string, since: Date) =>
  ((await h.http.get(`/v1/sites/${siteId}/events`).set(auth(t.key))).body as { type: string; message: string; createdAt: string }[]).filter(
    (e) => new Date(e.createdAt) >= since,
  );
/** The monitor's count of failed probes in a row (absent once one succeeds). */
const probesFailing = (siteId: string) => redis.exists(`berth:monitor:fails:${siteId}`);

describe('the edge (Caddy) in front of every site', () => {
  let site: { id: string; name: string };

  it('serves a new site on its platform hostname over HTTPS before the job ends, and redirects HTTP to HTTPS', async () => {
    const res = await h.http.post('/v1/sites').set(auth(t.key)).send({ name: 'front' });
    expect(res.status).toBe(202);
    site = res.body.site;
    const job = await waitForJob(h, t.key, res.body.job.id);
    expect(job.status).toBe('SUCCEEDED');
    const hostname = hostnameOf('front');
    expect(job.steps.at(-1)).toMatchObject({
      name: 'route through the edge',
      status: 'succeeded',
      detail: `served at https://${hostname}:${EDGE_HTTPS_PORT}/`,
    });
    const v = await view(site.id);
    expect(v).toMatchObject({ hostname, publicUrl: `https://${hostname}:${EDGE_HTTPS_PORT}/` });

    // Through the edge, the site answers exactly as on its own port.
    const direct = await (await fetch(v.url)).text();
    const edge = await viaEdge(hostname, '/');
    expect(edge.status).toBe(200);
    expect(edge.body).toBe(direct);

    const plain = await viaEdge(hostname, '/a/page?x=1', false);
    expect(plain.status).toBe(308);
    expect(plain.headers.location).toBe(`https://${hostname}:${EDGE_HTTPS_PORT}/a/page?x=1`);

    // Hostnames are case-insensitive and the edge's map of them is not: a hostname sent in
    // another case is redirected to its lowercase spelling, path kept (the same one is served above).
    const upper = await viaEdge(hostname.toUpperCase(), '/a/page?x=1');
    expect(upper).toMatchObject({ status: 308, headers: { location: `https://${hostname}:${EDGE_HTTPS_PORT}/a/page?x=1` } });
  });

  it("lets Berth's probes reach a site over plain HTTP with the installation's token only", async () => {
    const hostname = hostnameOf('front');
    const [probeRoute] = (await (await admin('GET', '/config/apps/http/servers/berth-http/routes')).json()) as {
      match: { header: Record<string, string[]> }[];
    }[];
    const [token] = probeRoute.match[0].header['X-Berth-Probe'];
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    // With the token, the site's own answer over HTTP (the monitor's probes pass this way)...
    const probed = await viaEdge(hostname, '/', false, { 'x-berth-probe': token });
    expect(probed.status).toBe(200);
    expect(probed.body).toBe((await viaEdge(hostname)).body);
    // ... and the edge's "no site here" for a hostname it does not route, as over HTTPS.
    expect((await viaEdge(hostnameOf('nosuchsite'), '/', false, { 'x-berth-probe': token })).headers['x-berth-unrouted']).toBe('1');
    // Without it, or with another value, the redirect to HTTPS, as for any browser.
    for (const headers of [
      {} as Record<string, string>,
      { 'x-berth-probe': token.replace(/.$/, (c) => (c === '0' ? '1' : '0')) },
      { 'x-berth-probe': '*' },
    ])
      expect(await viaEdge(hostname, '/', false, headers)).toMatchObject({ status: 308, headers: { 'x-berth-to-https': '1' } });
  });

  it('gets no certificate for a hostname Berth does not route (the ask endpoint refuses it)', async () => {
    // Positive control: the routed hostname's handshake succeeds with the same client.
    expect((await viaEdge(hostnameOf('front'))).status).toBe(200);
    await expect(viaEdge(hostnameOf('nosuchsite'))).rejects.toThrow();
    await expect(viaEdge('www.example.com')).rejects.toThrow();

    const ask = (domain?: string) => h.http.get('/v1/edge/ask').query(domain === undefined ? {} : { domain });
    expect((await ask(hostnameOf('front'))).status).toBe(200);
    expect((await ask(hostnameOf('front').toUpperCase())).status).toBe(200);
    expect((await ask(hostnameOf('nosuchsite'))).status).toBe(404);
    expect((await ask('www.example.com')).status).toBe(404);
    expect((await ask()).status).toBe(400);
  });

  it('puts every route back after the edge restarts with an empty configuration, without reporting the site down', async () => {
    const hostname = hostnameOf('front');
    const since = new Date();
    await stopEdge();
    // As an operator restarts it: the same script that started it, with nothing loaded.
    const start = spawnSync('bash', [join(__dirname, '..', 'scripts/services.sh'), 'edge'], { encoding: 'utf8', env: process.env });
    expect(start.status).toBe(0);
    expect(start.stderr).toMatch(/edge: starting Caddy/);
    await eventually(() => served(hostname), `${hostname} to be served again`, 20_000);
    // A probe through the edge has succeeded since (its failure count is gone): the outage was
    // shorter than BERTH_PROBE_FAILURES probes, so nobody is told the site was down.
    await eventually(async () => ((await probesFailing(site.id)) ? undefined : true), 'a probe to succeed');
    expect((await eventsSince(site.id, since)).filter((e) => e.type === 'site.down')).toEqual([]);
  });

  it('reports a site down when the edge stays down, saying its own port still answers, and up once the edge is back', async () => {
    const since = new Date();
    await stopEdge();
    try {
      // Positive control for the test above: the same probes do report an edge that stays down.
      const down = await eventually(
        async () => (await eventsSince(site.id, since)).find((e) => e.type === 'site.down'),
        'the site to be reported down',
        30_000,
      );
      expect(down.message).toMatch(/through the edge \(front-.*\): .*; on its own port: answers/);
    } finally {
      expect(spawnSync('bash', [join(__dirname, '..', 'scripts/services.sh'), 'edge'], { env: process.env }).status).toBe(0);
    }
    await eventually(async () => (await eventsSince(site.id, since)).find((e) => e.type === 'site.up'), 'the site to be up again', 30_000);
  });

  it('restores a route removed by hand and removes a route it did not make', async () => {
    const hostname = hostnameOf('front');
    // Caddy confirms each change by hand (200); Berth may undo it within a second, so its absence
    // is not asserted again here: that the route comes back, and the stray one goes, is. Both
    // changes keep the configuration's marker, and the probes do not see them (they take the
    // probe route's copies): the pass that reads the whole, one in 12 (12 s here), finds them.
    expect((await admin('DELETE', `/id/site-${site.id}`)).status).toBe(200);
    // Meanwhile the hostname gets the edge's "no site here" (or the site, if Berth was quicker),
    // never a redirect to itself.
    const meanwhile = await viaEdge(hostname);
    expect(
      meanwhile.status === 200 ? 'served' : meanwhile.headers['x-berth-unrouted'] === '1' ? 'unrouted' : `${meanwhile.status}`,
    ).toMatch(/^(served|unrouted)$/);
    const stray = { '@id': 'stray-by-hand', match: [{ host: ['stray.example'] }], handle: [{ handler: 'static_response', body: 'stray' }] };
    expect((await admin('PUT', '/config/apps/http/servers/berth/routes/0', stray)).status).toBe(200);

    await eventually(
      async () => ((await admin('GET', `/id/site-${site.id}`)).status === 200 ? true : undefined),
      'the route to be back',
      30_000,
    );
    await eventually(
      async () => ((await admin('GET', '/id/stray-by-hand')).status === 404 ? true : undefined),
      'the stray route to go',
      30_000,
    );
    expect(await served(hostname)).toBeDefined();
  });

  it("asks Caddy on most passes only whether it runs the configuration's marker, and reads the whole one pass in 12", async () => {
    const passes = async (result: string) =>
      Number(
        new RegExp(`^berth_edge_syncs_total\\{[^}]*result="${result}"[^}]*\\} (\\d+)$`, 'm').exec(
          (await h.http.get('/metrics')).text,
        )?.[1] ?? 0,
      );
    // The marker Berth made is in Caddy's running configuration, on its default log.
    const marker = ((await (await admin('GET', '/config/logging/logs/default')).json()) as { '@id'?: string })['@id'];
    expect(marker).toMatch(/^berth-config-[0-9a-f]{32}$/);
    expect((await admin('GET', `/id/${marker}`)).status).toBe(200);
    const [unchanged, verified, loaded] = [await passes('unchanged'), await passes('verified'), await passes('loaded')];
    await eventually(
      async () => ((await passes('verified')) >= verified + 1 && (await passes('unchanged')) >= unchanged + 11 ? true : undefined),
      'passes by marker, and one comparing the whole configuration',
      40_000,
    );
    // Nothing changed: neither kind of pass loaded the configuration again (the tests around
    // this one see loads when something does change).
    expect(await passes('loaded')).toBe(loaded);
  });

  it('stops serving a stopped site, serves it again once started, and serves each site of a tenant on its own hostname', async () => {
    const hostname = hostnameOf('front');
    const second = await provision(h, t.key, { name: 'second' });
    expect(await served(hostnameOf('second'))).toBeDefined();

    const stop = await h.http.post(`/v1/sites/${site.id}/stop`).set(auth(t.key));
    expect((await waitForJob(h, t.key, stop.body.job.id)).status).toBe('SUCCEEDED');
    await eventually(
      () =>
        viaEdge(hostname).then(
          (a) => (a.status === 404 ? true : undefined),
          () => true, // no certificate any more is as good: not served
        ),
      `${hostname} to be no longer served`,
      20_000,
    );
    // The other site of the tenant is unaffected (positive control for "no longer served").
    expect(await served(hostnameOf('second'))).toBeDefined();

    const start = await h.http.post(`/v1/sites/${site.id}/start`).set(auth(t.key));
    expect((await waitForJob(h, t.key, start.body.job.id)).status).toBe('SUCCEEDED');
    expect(await served(hostname)).toBeDefined();
    expect(second.id).not.toBe(site.id);
  });
});
