import { edgeRoot, viaEdge as edge } from './edge-client';
import { BASE_DOMAIN, EDGE_HTTPS_PORT } from './env';
import { auth, createTenant, gql, startHarness, waitForJob, type Harness } from './harness';
import { eventually } from './receivers';
import { provision, removeSuiteObjects } from './suite-helpers';

let h: Harness;
let a: Awaited<ReturnType<typeof createTenant>>;
let b: Awaited<ReturnType<typeof createTenant>>;
let root: string;
let site: { id: string; name: string };

/** Unique per run, so that the test database's hostnames never collide between runs. */
const run = Date.now().toString(36);
const shop = `shop-${run}.example.com`;
const www = `www.shop-${run}.example.com`;

beforeAll(async () => {
  h = await startHarness({ BERTH_EDGE_SYNC_MS: '1000' });
  a = await createTenant(h);
  b = await createTenant(h);
  root = await edgeRoot();
  site = await provision(h, a.key, { name: 'store' });
});
afterAll(async () => {
  await h.stop();
  await removeSuiteObjects();
});

const viaEdge = (hostname: string, path = '/') => edge(root, hostname, path);
const platform = () => `store-${a.tenant.slug}.${BASE_DOMAIN}`;
const add = (key: string, siteId: string, body: Record<string, unknown>) =>
  h.http.post(`/v1/sites/${siteId}/domains`).set(auth(key)).send(body);
/** Not served: no certificate any more, or the edge's own "no site here". */
const notServed = (hostname: string) =>
  viaEdge(hostname).then(
    (r) => (r.status === 404 && r.headers['x-berth-unrouted'] ? true : undefined),
    () => true,
  );

describe('custom domains', () => {
  it('serves a site on its primary domain and redirects its other hostnames there (301, path kept)', async () => {
    const first = await add(a.key, site.id, { hostname: shop.toUpperCase() });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ hostname: shop, primary: false, siteId: site.id });
    // Not primary: it redirects to the platform hostname, which is still the site's primary.
    const toPlatform = await eventually(async () => {
      const r = await viaEdge(shop, '/p?q=1');
      return r.status === 301 ? r : undefined;
    }, `${shop} to redirect`);
    expect(toPlatform.headers.location).toBe(`https://${platform()}:${EDGE_HTTPS_PORT}/p?q=1`);

    expect((await add(a.key, site.id, { hostname: www, primary: true })).status).toBe(201);
    await eventually(async () => ((await viaEdge(www)).status === 200 ? true : undefined), `${www} to be served`);
    for (const other of [shop, platform()]) {
      const r = await viaEdge(other, '/cart?id=7');
      expect(r.status).toBe(301);
      expect(r.headers.location).toBe(`https://${www}:${EDGE_HTTPS_PORT}/cart?id=7`);
    }
    const view = (await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key))).body;
    expect(view.publicUrl).toBe(`https://${www}:${EDGE_HTTPS_PORT}/`);
    // A single site is read with one hand-written query, a list through Prisma: the same view
    // (dates, JSON, the tenant's and the primary domain's fields), apart from the live containers.
    const listed = (await h.http.get('/v1/sites?limit=200').set(auth(a.key))).body as { id: string }[];
    const { containers, ...single } = view as { containers: { role: string }[] };
    expect(containers.map((c) => c.role).sort()).toEqual(['db', 'wordpress']);
    expect(single).toEqual(listed.find((s) => s.id === site.id));
    expect(single).toMatchObject({ hostname: platform(), wordpress: { installedAt: expect.any(String) }, env: expect.any(Object) });
    const list = (await h.http.get(`/v1/sites/${site.id}/domains`).set(auth(a.key))).body as { hostname: string; primary: boolean }[];
    expect(list.map((d) => [d.hostname, d.primary])).toEqual([
      [www, true],
      [shop, false],
    ]);
    expect((await h.http.get('/v1/edge/ask').query({ domain: www })).status).toBe(200);
  });

  it("refuses a hostname another site holds, without saying whose it is, and hides one tenant's domains from another", async () => {
    const other = await provision(h, b.key, { name: 'rival' });
    const taken = await add(b.key, other.id, { hostname: shop });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe('DOMAIN_TAKEN');
    expect(JSON.stringify(taken.body)).not.toContain(a.tenant.slug);
    expect(JSON.stringify(taken.body)).not.toContain(site.id);
    // Positive control: the same tenant may add a hostname nobody holds.
    expect((await add(b.key, other.id, { hostname: `rival-${run}.example.org` })).status).toBe(201);
    expect((await h.http.get(`/v1/sites/${site.id}/domains`).set(auth(b.key))).status).toBe(404);
    expect((await add(b.key, site.id, { hostname: `steal-${run}.example.org` })).status).toBe(404);
  });

  it('adds the www. variant when asked, as a hostname of its own that redirects to the primary', async () => {
    const blog = `blog-${run}.example.org`;
    const res = await add(a.key, site.id, { hostname: blog, www: true });
    expect(res.status).toBe(201);
    const list = (await h.http.get(`/v1/sites/${site.id}/domains`).set(auth(a.key))).body as { hostname: string; primary: boolean }[];
    expect(list.map((d) => d.hostname)).toEqual(expect.arrayContaining([blog, `www.${blog}`]));
    const r = await eventually(async () => {
      const x = await viaEdge(`www.${blog}`, '/x');
      return x.status === 301 ? x : undefined;
    }, `www.${blog} to redirect`);
    expect(r.headers.location).toBe(`https://${www}:${EDGE_HTTPS_PORT}/x`);
    // Taken as a whole: when the variant is held already, neither is added.
    const zine = `zine-${run}.example.org`;
    expect((await add(a.key, site.id, { hostname: `www.${zine}` })).status).toBe(201);
    const refused = await add(a.key, site.id, { hostname: zine, www: true });
    expect(refused.status).toBe(409);
    const after = (await h.http.get(`/v1/sites/${site.id}/domains`).set(auth(a.key))).body as { hostname: string }[];
    expect(after.map((d) => d.hostname)).not.toContain(zine);
    expect((await h.http.delete(`/v1/sites/${site.id}/domains/www.${zine}`).set(auth(a.key))).status).toBe(200);
    for (const hostname of [blog, `www.${blog}`])
      expect((await h.http.delete(`/v1/sites/${site.id}/domains/${hostname}`).set(auth(a.key))).status).toBe(200);
  });

  it("refuses a site name whose platform hostname another tenant's site spells already (blog-x in acme, blog in x-acme)", async () => {
    const r = Date.now().toString(36).slice(-5);
    const outer = await createTenant(h, `cb-ca${r}`);
    const inner = await createTenant(h, `ca${r}`);
    expect((await h.http.post('/v1/sites').set(auth(outer.key)).send({ name: 'xyz' })).status).toBe(202);
    // "xyz-cb" in ca<r> would be xyz-cb-ca<r>, the hostname of "xyz" in cb-ca<r>.
    const clash = await h.http.post('/v1/sites').set(auth(inner.key)).send({ name: 'xyz-cb' });
    expect(clash.status).toBe(409);
    expect(clash.body.code).toBe('DOMAIN_TAKEN');
    // Positive control: a name that spells another hostname is fine.
    expect((await h.http.post('/v1/sites').set(auth(inner.key)).send({ name: 'xyz-cc' })).status).toBe(202);
  });

  it.each([
    ['a wildcard', '*.example.com', /wildcard/],
    ["a name under the platform's base domain", `x.${BASE_DOMAIN}`, /platform's own/],
    ['an IP address', '10.1.2.3', /IP address/],
    ['a single label', 'intranet', /two labels/],
    ['a label too long', `${'a'.repeat(64)}.example.com`, /label/],
  ])('refuses %s with a 400 that says why, and adds nothing', async (_what, hostname, why) => {
    const res = await add(a.key, site.id, { hostname });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.detail).toMatch(why);
    expect((await h.http.get(`/v1/sites/${site.id}/domains`).set(auth(a.key))).body).toHaveLength(2);
  });

  it('encodes an internationalised name, and works over GraphQL (addDomain, site { domains }, removeDomain)', async () => {
    const idn = `bücher-${run}.example`;
    const added = await gql<{ addDomain: { hostname: string } }>(
      h,
      a.key,
      'mutation($id: ID!, $h: String!) { addDomain(siteId: $id, input: { hostname: $h }) { hostname primary } }',
      { id: site.id, h: idn },
    );
    expect(added.errors).toBeUndefined();
    expect(added.data?.addDomain.hostname).toMatch(/^xn--bcher-.*\.example$/);
    const read = await gql<{ site: { domains: { hostname: string }[] } }>(
      h,
      a.key,
      'query($id: ID!) { site(id: $id) { domains { hostname primary } } }',
      {
        id: site.id,
      },
    );
    expect(read.data?.site.domains.map((d) => d.hostname)).toContain(added.data?.addDomain.hostname);
    const removed = await gql(h, a.key, 'mutation($id: ID!, $h: String!) { removeDomain(siteId: $id, hostname: $h) { hostname } }', {
      id: site.id,
      h: idn,
    });
    expect(removed.errors).toBeUndefined();
    const again = await gql(h, a.key, 'mutation($id: ID!, $h: String!) { removeDomain(siteId: $id, hostname: $h) { hostname } }', {
      id: site.id,
      h: idn,
    });
    expect(again.errors?.[0].extensions?.code).toBe('DOMAIN_NOT_FOUND');
  });

  it('stops serving a removed domain, and frees the hostnames of a deleted site for others', async () => {
    expect((await h.http.delete(`/v1/sites/${site.id}/domains/${www}`).set(auth(a.key))).status).toBe(200);
    await eventually(() => notServed(www), `${www} to be no longer served`);
    expect((await h.http.get('/v1/edge/ask').query({ domain: www })).status).toBe(404);
    // The platform hostname is the primary again (positive control for "not served").
    expect((await viaEdge(platform())).status).toBe(200);

    const del = await h.http.delete(`/v1/sites/${site.id}`).set(auth(a.key));
    expect((await waitForJob(h, a.key, del.body.job.id)).status).toBe('SUCCEEDED');
    const rival = (await h.http.get('/v1/sites').set(auth(b.key))).body[0] as { id: string };
    expect((await add(b.key, rival.id, { hostname: shop })).status).toBe(201);
  });
});
