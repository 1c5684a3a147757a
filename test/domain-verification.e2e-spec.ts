import { TestDnsServer } from './dns-server';
import { edgeRoot, viaEdge as edge } from './edge-client';
import { EDGE_HTTPS_PORT } from './env';
import { auth, createTenant, gql, startHarness, type Harness } from './harness';
import { eventually } from './receivers';
import { provision, removeSuiteObjects } from './suite-helpers';

const dns = new TestDnsServer();
let h: Harness;
let t: Awaited<ReturnType<typeof createTenant>>;
let root: string;
let site: { id: string };
const run = Date.now().toString(36);

beforeAll(async () => {
  const server = await dns.start();
  h = await startHarness({
    BERTH_DOMAIN_VERIFICATION: 'dns',
    BERTH_DNS_SERVERS: server,
    BERTH_DOMAIN_CHECK_MS: '1000',
    BERTH_EDGE_SYNC_MS: '1000',
  });
  t = await createTenant(h);
  root = await edgeRoot();
  site = await provision(h, t.key, { name: 'owned' });
});
afterAll(async () => {
  await h.stop();
  await dns.stop();
  await removeSuiteObjects();
});

interface Domain {
  hostname: string;
  status: string;
  verification: { type: string; name: string; value: string } | null;
}
const domains = async () => (await h.http.get(`/v1/sites/${site.id}/domains`).set(auth(t.key))).body as Domain[];
const ask = (domain: string) => h.http.get('/v1/edge/ask').query({ domain });

describe('domain ownership shown with a TXT record (BERTH_DOMAIN_VERIFICATION=dns)', () => {
  it('keeps a new domain PENDING and unrouted until its TXT record holds the token, then routes it', async () => {
    const hostname = `www.owned-${run}.example.com`;
    const res = await h.http.post(`/v1/sites/${site.id}/domains`).set(auth(t.key)).send({ hostname, primary: true });
    expect(res.status).toBe(201);
    const added = res.body as Domain;
    expect(added).toMatchObject({ status: 'PENDING', verification: { type: 'TXT', name: `_berth-challenge.${hostname}` } });
    expect(added.verification?.value).toMatch(/^[A-Za-z0-9_-]{20,}$/);

    // Pending: not routed, no certificate, the site's URL is still its platform hostname.
    expect((await ask(hostname)).status).toBe(404);
    await expect(edge(root, hostname)).rejects.toThrow();
    const view = (await h.http.get(`/v1/sites/${site.id}`).set(auth(t.key))).body as { publicUrl: string; hostname: string };
    expect(view.publicUrl).toBe(`https://${view.hostname}:${EDGE_HTTPS_PORT}/`);

    // A record with another value is not enough (the check runs, and says no).
    dns.set(`_berth-challenge.${hostname}`, 'not-the-token');
    const checked = await h.http.post(`/v1/sites/${site.id}/domains/${hostname}/verify`).set(auth(t.key));
    expect(checked.status).toBe(200);
    expect(checked.body.status).toBe('PENDING');
    expect(dns.asked).toContain(`_berth-challenge.${hostname}`);

    // The right value: the periodic check finds it, with nobody asking.
    dns.set(`_berth-challenge.${hostname}`, added.verification!.value);
    await eventually(
      async () => ((await domains()).find((d) => d.hostname === hostname)?.status === 'ACTIVE' ? true : undefined),
      `${hostname} to be verified`,
    );
    expect((await domains()).find((d) => d.hostname === hostname)?.verification).toBeNull();
    expect((await ask(hostname)).status).toBe(200);
    await eventually(
      async () => ((await edge(root, hostname).catch(() => undefined))?.status === 200 ? true : undefined),
      `${hostname} to be served`,
    );
    const events = (await h.http.get(`/v1/sites/${site.id}/events`).set(auth(t.key))).body as { type: string }[];
    expect(events.map((e) => e.type)).toContain('domain.verified');
    expect(((await h.http.get(`/v1/sites/${site.id}`).set(auth(t.key))).body as { publicUrl: string }).publicUrl).toBe(
      `https://${hostname}:${EDGE_HTTPS_PORT}/`,
    );
  });

  it('verifies on request (REST and GraphQL verifyDomain) once the record is there', async () => {
    const hostname = `shop-${run}.example.org`;
    const added = (await h.http.post(`/v1/sites/${site.id}/domains`).set(auth(t.key)).send({ hostname })).body as Domain;
    expect(added.status).toBe('PENDING');
    dns.set(`_berth-challenge.${hostname}`, added.verification!.value);
    const verified = await gql<{ verifyDomain: { status: string } }>(
      h,
      t.key,
      'mutation($s: ID!, $h: String!) { verifyDomain(siteId: $s, hostname: $h) { status verification { name } } }',
      { s: site.id, h: hostname },
    );
    expect(verified.errors).toBeUndefined();
    expect(verified.data?.verifyDomain.status).toBe('ACTIVE');
  });
  it("lets a pending claim block nobody: the tenant whose TXT record holds its token gets the hostname, the other's claim is removed", async () => {
    const hostname = `contested-${run}.example.net`;
    const squatter = await createTenant(h);
    const squat = await provision(h, squatter.key, { name: 'squat' });
    const squatDomains = async () => (await h.http.get(`/v1/sites/${squat.id}/domains`).set(auth(squatter.key))).body as Domain[];
    // Another tenant claims the hostname first, and can never show ownership of it.
    const first = await h.http.post(`/v1/sites/${squat.id}/domains`).set(auth(squatter.key)).send({ hostname });
    expect(first.status).toBe(201);
    expect(first.body.status).toBe('PENDING');
    // The owner's claim is not refused for it (before: 409 DOMAIN_TAKEN, for as long as the squatter liked).
    const claim = await h.http.post(`/v1/sites/${site.id}/domains`).set(auth(t.key)).send({ hostname });
    expect(claim.status).toBe(201);
    const owned = claim.body as Domain;
    expect(owned.verification!.value).not.toBe((first.body as Domain).verification!.value);
    // Each site claims a hostname once.
    expect((await h.http.post(`/v1/sites/${site.id}/domains`).set(auth(t.key)).send({ hostname })).status).toBe(409);

    dns.set(`_berth-challenge.${hostname}`, owned.verification!.value);
    const verified = await h.http.post(`/v1/sites/${site.id}/domains/${hostname}/verify`).set(auth(t.key));
    expect(verified.body.status).toBe('ACTIVE');
    // The squatter's claim could never be verified now: it is gone, and its tenant told.
    expect((await squatDomains()).map((d) => d.hostname)).not.toContain(hostname);
    const events = (await h.http.get(`/v1/sites/${squat.id}/events`).set(auth(squatter.key))).body as { type: string; message: string }[];
    expect(events.find((e) => e.type === 'domain.released')?.message).toMatch(/another site showed ownership of it first/);
    // Control: a verified hostname is taken, for every tenant.
    const again = await h.http.post(`/v1/sites/${squat.id}/domains`).set(auth(squatter.key)).send({ hostname });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('DOMAIN_TAKEN');
    expect((await ask(hostname)).status).toBe(200);
  });
});
