import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { edgeAdmin, EDGE_ADMIN, edgeRoot, viaEdge as edge } from './edge-client';
import { BASE_DOMAIN, EDGE_HTTPS_PORT } from './env';
import { auth, createTenant, startHarness, waitForJob, type Harness } from './harness';
import { eventually } from './receivers';
import { provision, removeSuiteObjects } from './suite-helpers';

/** The real edge of this test slot (Caddy, started by scripts/test.sh), driven by the Berth under test. */
const ADMIN = EDGE_ADMIN;

let h: Harness;
let t: Awaited<ReturnType<typeof createTenant>>;
let root: string;

beforeAll(async () => {
  h = await startHarness({ BERTH_EDGE_SYNC_MS: '1000', BERTH_JOB_ATTEMPTS: '1' });
  t = await createTenant(h);
  root = await edgeRoot();
});
afterAll(async () => {
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
const viaEdge = (hostname: string, path = '/', tls = true) => edge(root, hostname, path, tls);
/** Served: the site's own answer through the edge (not a failed handshake, not the edge's "no site here"). */
const served = (hostname: string) => viaEdge(hostname).then((a) => (a.status === 200 ? a : undefined));

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

  it('puts every route back after the edge restarts with an empty configuration', async () => {
    const hostname = hostnameOf('front');
    await admin('POST', '/stop');
    await eventually(
      () =>
        fetch(`${ADMIN}/config/`).then(
          () => undefined,
          () => true,
        ),
      'the edge to stop',
    );
    // As an operator restarts it: the same script that started it, with nothing loaded.
    const start = spawnSync('bash', [join(__dirname, '..', 'scripts/services.sh'), 'edge'], { encoding: 'utf8', env: process.env });
    expect(start.status).toBe(0);
    expect(start.stderr).toMatch(/edge: starting Caddy/);
    await eventually(() => served(hostname), `${hostname} to be served again`, 20_000);
  });

  it('restores a route removed by hand and removes a route it did not make', async () => {
    const hostname = hostnameOf('front');
    expect((await admin('DELETE', `/id/site-${site.id}`)).status).toBe(200);
    expect((await admin('GET', `/id/site-${site.id}`)).status).toBe(404);
    const stray = { '@id': 'stray-by-hand', match: [{ host: ['stray.example'] }], handle: [{ handler: 'static_response', body: 'stray' }] };
    expect((await admin('PUT', '/config/apps/http/servers/berth/routes/0', stray)).status).toBe(200);
    expect((await admin('GET', '/id/stray-by-hand')).status).toBe(200);

    await eventually(
      async () => ((await admin('GET', `/id/site-${site.id}`)).status === 200 ? true : undefined),
      'the route to be back',
      20_000,
    );
    await eventually(
      async () => ((await admin('GET', '/id/stray-by-hand')).status === 404 ? true : undefined),
      'the stray route to go',
      20_000,
    );
    expect(await served(hostname)).toBeDefined();
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
