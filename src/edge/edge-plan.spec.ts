import {
  edgeConfig,
  edgeUrl,
  FALLBACK_ID,
  markerOf,
  NO_INSTALLER_ID,
  platformHostname,
  PROBE_HEADER,
  routeId,
  TO_HTTPS_HEADER,
  UNROUTED_HEADER,
  type EdgeSettings,
} from './edge-plan';

const settings: EdgeSettings = {
  adminListen: '127.0.0.1:2019',
  httpPort: 80,
  httpsPort: 443,
  tls: 'internal',
  askUrl: 'http://127.0.0.1:3000/v1/edge/ask',
};
const a = { siteId: 'a', primary: 'blog-acme.sites.test', aliases: [], upstream: '127.0.0.1:20001' };
const b = { siteId: 'b', primary: 'shop-acme.sites.test', aliases: [], upstream: '127.0.0.1:20002' };

type Server = { listen: string[]; routes: { '@id': string; match?: { host: string[] }[]; handle: Record<string, unknown>[] }[] };
const servers = (c: Record<string, unknown>) => (c.apps as { http: { servers: Record<string, Server> } }).http.servers;

describe('the edge configuration', () => {
  it('carries a marker that names it: the same for the same configuration, another for any change', () => {
    const marker = markerOf(edgeConfig([a, b], settings));
    expect(marker).toMatch(/^berth-config-[0-9a-f]{32}$/);
    expect((edgeConfig([a, b], settings).logging as { logs: { default: object } }).logs.default).toEqual({ '@id': marker, level: 'WARN' });
    expect(markerOf(edgeConfig([b, a], settings))).toBe(marker);
    const others = [
      edgeConfig([a], settings),
      edgeConfig([a, { ...b, upstream: '127.0.0.1:20003' }], settings),
      edgeConfig([a, { ...b, aliases: ['www.shop.test'] }], settings),
      edgeConfig([a, b], { ...settings, httpsPort: 8443 }),
      edgeConfig([a, b], { ...settings, probeToken: 'f00d' }),
    ].map(markerOf);
    expect(new Set([marker, ...others]).size).toBe(6);
  });

  it('routes each site by its hostnames to its upstream, in an order that does not depend on the database', () => {
    const config = edgeConfig([b, a], settings);
    expect(config).toEqual(edgeConfig([a, b], settings));
    const routes = servers(config).berth.routes;
    expect(routes.map((r) => r['@id'])).toEqual([NO_INSTALLER_ID, routeId('a'), routeId('b'), FALLBACK_ID]);
    expect(routes[1]).toMatchObject({
      match: [{ host: ['blog-acme.sites.test'] }],
      handle: [{ handler: 'reverse_proxy', upstreams: [{ dial: '127.0.0.1:20001' }] }],
    });
    expect(routes[3].handle[0]).toMatchObject({ status_code: 404, headers: { [UNROUTED_HEADER]: ['1'] } });
  });

  it('redirects (301) every other hostname of a site to its primary, keeping the path', () => {
    const withDomain = { ...a, primary: 'www.blog.example', aliases: ['blog.example', 'blog-acme.sites.test'] };
    const routes = servers(edgeConfig([withDomain], { ...settings, httpsPort: 8443 })).berth.routes;
    expect(routes.map((r) => r['@id'])).toEqual([NO_INSTALLER_ID, routeId('a'), `${routeId('a')}-aliases`, FALLBACK_ID]);
    expect(routes[1].match).toEqual([{ host: ['www.blog.example'] }]);
    expect(routes[2]).toMatchObject({
      match: [{ host: ['blog-acme.sites.test', 'blog.example'] }],
      handle: [
        { handler: 'static_response', status_code: 301, headers: { Location: ['https://www.blog.example:8443{http.request.uri}'] } },
      ],
    });
  });

  it("never serves WordPress's installer or config writer, for any hostname, before every site's route", () => {
    const routes = servers(edgeConfig([a], settings)).berth.routes as unknown as Record<string, unknown>[];
    expect(routes[0]).toEqual({
      '@id': NO_INSTALLER_ID,
      match: [{ path: ['/wp-admin/install.php', '/wp-admin/install.php/*', '/wp-admin/setup-config.php', '/wp-admin/setup-config.php/*'] }],
      terminal: true,
      handle: [{ handler: 'static_response', status_code: 404, body: 'Not found.\n' }],
    });
  });

  it('keeps the admin API where Caddy was started with it, and never autosaves (the database is the source of truth)', () => {
    expect(edgeConfig([], settings).admin).toEqual({ listen: '127.0.0.1:2019', config: { persist: false } });
  });

  it('with TLS, serves HTTPS with certificates on demand that Berth must allow, and redirects HTTP to HTTPS', () => {
    const config = edgeConfig([a], { ...settings, httpPort: 18080, httpsPort: 18443 });
    const { berth, 'berth-http': http } = servers(config);
    expect(berth.listen).toEqual([':18443']);
    expect(http.listen).toEqual([':18080']);
    expect(http.routes[0].handle[0]).toMatchObject({
      status_code: 308,
      headers: { Location: ['https://{http.request.host}:18443{http.request.uri}'] },
    });
    expect(config.apps).toMatchObject({
      tls: { automation: { policies: [{ issuers: [{ module: 'internal' }], on_demand: true }], on_demand: { ask: settings.askUrl } } },
    });
    const acme = edgeConfig([a], { ...settings, tls: 'acme', acmeEmail: 'ops@example.com' });
    expect(acme.apps).toMatchObject({
      tls: { automation: { policies: [{ issuers: [{ module: 'acme', email: 'ops@example.com' }], on_demand: true }] } },
    });
    // On port 443 the redirect names no port.
    expect(servers(edgeConfig([a], settings))['berth-http'].routes[0].handle[0]).toMatchObject({
      headers: { Location: ['https://{http.request.host}{http.request.uri}'] },
    });
  });

  it("routes Berth's probes over plain HTTP as over HTTPS, by the token only, and redirects everything else", () => {
    const config = edgeConfig([a, { ...b, aliases: ['www.shop.test'] }], { ...settings, probeToken: 'f00d' });
    const [probe, redirect] = servers(config)['berth-http'].routes as unknown as Record<string, unknown>[];
    expect(probe).toMatchObject({ match: [{ header: { [PROBE_HEADER]: ['f00d'] } }], terminal: true });
    const [strip, { routes: sub }] = probe.handle as [unknown, { routes: Record<string, unknown>[] }];
    // The token goes no further than the edge.
    expect(strip).toEqual({ handler: 'headers', request: { delete: [PROBE_HEADER] } });
    // The same routes as the HTTPS server's, without their @ids (an @id is unique in a
    // configuration), the sites told the request came over HTTPS.
    const https = servers(config).berth.routes.map(({ '@id': _id, ...r }) => r);
    expect(sub.map((r) => ({ ...r, handle: (r.handle as Record<string, unknown>[]).map(({ headers: _h, ...h }) => h) }))).toEqual(
      https.map((r) => ({ ...r, handle: r.handle.map(({ headers: _h, ...h }) => h) })),
    );
    const proxied = sub.flatMap((r) => r.handle as Record<string, unknown>[]).filter((h) => h.handler === 'reverse_proxy');
    expect(proxied).toHaveLength(2);
    for (const h of proxied) expect(h.headers).toEqual({ request: { set: { 'X-Forwarded-Proto': ['https'] } } });
    expect(JSON.stringify(sub)).not.toContain('@id');
    expect(redirect).toMatchObject({ '@id': 'berth-to-https', handle: [{ status_code: 308, headers: { [TO_HTTPS_HEADER]: ['1'] } }] });
    // Without a token there is no way around the redirect.
    expect(servers(edgeConfig([a], settings))['berth-http'].routes).toHaveLength(1);
  });

  it('with TLS off, serves the sites over HTTP only and asks for no certificate', () => {
    const config = edgeConfig([a], { ...settings, tls: 'off', httpPort: 8080 });
    expect(Object.keys(servers(config))).toEqual(['berth']);
    expect(servers(config).berth).toMatchObject({ listen: [':8080'], automatic_https: { disable: true } });
    expect(config.apps).not.toHaveProperty('tls');
  });

  it("names each site <site>-<tenant>.<base domain> and gives its URL without the scheme's own port", () => {
    expect(platformHostname('blog', 'acme', 'sites.example.com')).toBe('blog-acme.sites.example.com');
    expect(edgeUrl('blog-acme.sites.test', settings)).toBe('https://blog-acme.sites.test/');
    expect(edgeUrl('blog-acme.sites.test', { ...settings, httpsPort: 8443 })).toBe('https://blog-acme.sites.test:8443/');
    expect(edgeUrl('blog-acme.sites.test', { ...settings, tls: 'off', httpPort: 80 })).toBe('http://blog-acme.sites.test/');
  });
});
