import {
  CASE_ID,
  edgeConfig,
  edgeUrl,
  FALLBACK_ID,
  HOSTS_ID,
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

type Route = { '@id'?: string; match?: Record<string, unknown>[]; terminal?: boolean; handle: Record<string, unknown>[] };
type Server = { listen: string[]; routes: Route[] };
const servers = (c: Record<string, unknown>) => (c.apps as { http: { servers: Record<string, Server> } }).http.servers;
type Mapping = { '@id'?: string; input: string; outputs: [string, string] };
/** The hostnames' map of a server's routes. */
const hostMap = (routes: Route[]) =>
  routes.find((r) => r['@id'] === HOSTS_ID)!.handle[0] as { handler: string; source: string; destinations: string[]; mappings: Mapping[] };
/** The routes for hostnames sent in another case. */
const caseRoutes = (routes: Route[]) => (routes.find((r) => r['@id'] === CASE_ID)!.handle[0] as { routes: Route[] }).routes;

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

  it("maps each site's hostname to its upstream in one map, in an order that does not depend on the database", () => {
    const config = edgeConfig([b, a], settings);
    expect(config).toEqual(edgeConfig([a, b], settings));
    const routes = servers(config).berth.routes;
    expect(routes.map((r) => r['@id'])).toEqual([NO_INSTALLER_ID, HOSTS_ID, undefined, undefined, CASE_ID, FALLBACK_ID]);
    expect(hostMap(routes)).toEqual({
      handler: 'map',
      source: '{http.request.host}',
      destinations: ['{berth.upstream}', '{berth.redirect}'],
      mappings: [
        { '@id': routeId('a'), input: 'blog-acme.sites.test', outputs: ['127.0.0.1:20001', ''] },
        { '@id': routeId('b'), input: 'shop-acme.sites.test', outputs: ['127.0.0.1:20002', ''] },
      ],
      defaults: ['', ''],
    });
    // One proxy for every site, to the upstream its hostname maps to; a hostname that maps to none gets the edge's 404.
    expect(routes[3]).toEqual({
      match: [{ not: [{ vars: { '{berth.upstream}': [''] } }] }],
      terminal: true,
      handle: [{ handler: 'reverse_proxy', upstreams: [{ dial: '{berth.upstream}' }] }],
    });
    expect(routes[5].handle[0]).toMatchObject({ status_code: 404, headers: { [UNROUTED_HEADER]: ['1'] } });
  });

  it('redirects (301) every other hostname of a site to its primary, keeping the path', () => {
    const withDomain = { ...a, primary: 'www.blog.example', aliases: ['blog.example', 'blog-acme.sites.test'] };
    const routes = servers(edgeConfig([withDomain], { ...settings, httpsPort: 8443 })).berth.routes;
    expect(hostMap(routes).mappings).toEqual([
      { '@id': routeId('a'), input: 'www.blog.example', outputs: ['127.0.0.1:20001', ''] },
      { input: 'blog-acme.sites.test', outputs: ['', 'https://www.blog.example:8443'] },
      { input: 'blog.example', outputs: ['', 'https://www.blog.example:8443'] },
    ]);
    // Before the proxy: an alias maps to no upstream, its primary's URL.
    expect(routes[2]).toEqual({
      match: [{ not: [{ vars: { '{berth.redirect}': [''] } }] }],
      terminal: true,
      handle: [{ handler: 'static_response', status_code: 301, headers: { Location: ['{berth.redirect}{http.request.uri}'] } }],
    });
  });

  it("redirects (308) a hostname sent in another case to its site's primary URL, the map comparing exactly", () => {
    const mixed = { ...a, primary: 'WWW.Blog.Example', aliases: ['Blog.Example'] };
    const routes = servers(edgeConfig([mixed, b], settings)).berth.routes;
    expect(hostMap(routes).mappings.map((m) => m.input)).toEqual(['www.blog.example', 'blog.example', 'shop-acme.sites.test']);
    // A route a site, for the hostnames the map gives it (Caddy's host matcher ignores case).
    expect(caseRoutes(routes)).toEqual([
      {
        match: [{ host: ['www.blog.example', 'blog.example'] }],
        terminal: true,
        handle: [{ handler: 'static_response', status_code: 308, headers: { Location: ['https://www.blog.example{http.request.uri}'] } }],
      },
      {
        match: [{ host: ['shop-acme.sites.test'] }],
        terminal: true,
        handle: [
          { handler: 'static_response', status_code: 308, headers: { Location: ['https://shop-acme.sites.test{http.request.uri}'] } },
        ],
      },
    ]);
    // After the map's routes (a hostname it maps never gets there), before the edge's 404.
    expect(routes.map((r) => r['@id']).slice(-2)).toEqual([CASE_ID, FALLBACK_ID]);
  });

  it('gives a hostname that comes twice to the first site that has it (a map refuses a repeated input)', () => {
    const first = { ...a, aliases: ['shared.example'] };
    const second = { ...b, primary: 'shared.example', aliases: ['blog-acme.sites.test', 'own.example'] };
    const mappings = hostMap(servers(edgeConfig([second, first], settings)).berth.routes).mappings;
    expect(mappings).toEqual([
      { '@id': routeId('a'), input: 'blog-acme.sites.test', outputs: ['127.0.0.1:20001', ''] },
      { input: 'shared.example', outputs: ['', 'https://blog-acme.sites.test'] },
      { input: 'own.example', outputs: ['', 'https://shared.example'] },
    ]);
    expect(new Set(mappings.map((m) => m.input)).size).toBe(mappings.length);
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
    const [strip, { routes: sub }] = probe.handle as [unknown, { routes: Route[] }];
    // The token goes no further than the edge.
    expect(strip).toEqual({ handler: 'headers', request: { delete: [PROBE_HEADER] } });
    // The same routes as the HTTPS server's but those for another case, without their @ids (an
    // @id is unique in a configuration), the sites told the request came over HTTPS.
    const strip2 = (routes: Route[]) =>
      routes.map(({ '@id': _id, ...r }) => ({ ...r, handle: r.handle.map(({ headers: _h, ...h }) => h) }));
    const https = servers(config).berth.routes.filter((r) => r['@id'] !== CASE_ID);
    expect(JSON.stringify(strip2(sub))).toBe(JSON.stringify(strip2(https)).replace(/"@id":"[^"]*",/g, ''));
    const proxied = sub.flatMap((r) => r.handle).filter((h) => h.handler === 'reverse_proxy');
    expect(proxied).toHaveLength(1);
    expect(proxied[0].headers).toEqual({ request: { set: { 'X-Forwarded-Proto': ['https'] } } });
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
