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
/** The redirect and proxy routes after the map. */
const afterMap = (routes: Route[]) => (routes.find((r) => r['@id'] === HOSTS_ID)!.handle[1] as { routes: Route[] }).routes;
const REDIRECT_ROUTE = {
  match: [{ not: [{ vars: { '{berth.redirect}': [''] } }] }],
  terminal: true,
  handle: [{ handler: 'static_response', status_code: 301, headers: { Location: ['{berth.redirect}{http.request.uri}'] } }],
};
const PROXY_ROUTE = {
  match: [{ not: [{ vars: { '{berth.upstream}': [''] } }] }],
  terminal: true,
  handle: [{ handler: 'reverse_proxy', upstreams: [{ dial: '{berth.upstream}' }] }],
};

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
    expect(routes.map((r) => r['@id'])).toEqual([NO_INSTALLER_ID, HOSTS_ID, CASE_ID, FALLBACK_ID]);
    // One route for every routed hostname, the map first; not terminal (a hostname it lacks goes on to the 404).
    expect(routes[1].match).toBeUndefined();
    expect(routes[1].terminal).toBeUndefined();
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
    // Then an alias's redirect or the one proxy for every site, to the upstream its hostname maps to.
    expect(afterMap(routes)).toEqual([REDIRECT_ROUTE, PROXY_ROUTE]);
    expect(routes[3].handle[0]).toMatchObject({ status_code: 404, headers: { [UNROUTED_HEADER]: ['1'] } });
    // With no site, no route for them (an empty host list is not a matcher to give Caddy).
    expect(servers(edgeConfig([], settings)).berth.routes.map((r) => r['@id'])).toEqual([NO_INSTALLER_ID, CASE_ID, FALLBACK_ID]);
  });

  it('redirects (301) every other hostname of a site to its primary, keeping the path', () => {
    const withDomain = { ...a, primary: 'www.blog.example', aliases: ['blog.example', 'blog-acme.sites.test'] };
    const routes = servers(edgeConfig([withDomain], { ...settings, httpsPort: 8443 })).berth.routes;
    expect(hostMap(routes).mappings).toEqual([
      { '@id': routeId('a'), input: 'www.blog.example', outputs: ['127.0.0.1:20001', ''] },
      { input: 'blog-acme.sites.test', outputs: ['', 'https://www.blog.example:8443'] },
      { input: 'blog.example', outputs: ['', 'https://www.blog.example:8443'] },
    ]);
    // The redirect comes before the proxy: an alias maps to no upstream, its primary's URL.
    expect(afterMap(routes)[0]).toEqual(REDIRECT_ROUTE);
  });

  it("redirects (308) a hostname sent in another case to its site's primary URL, the map comparing exactly", () => {
    const mixed = { ...a, primary: 'WWW.Blog.Example', aliases: ['Blog.Example'] };
    const routes = servers(edgeConfig([mixed, b], settings)).berth.routes;
    expect(hostMap(routes).mappings.map((m) => m.input)).toEqual(['www.blog.example', 'blog.example', 'shop-acme.sites.test']);
    // Only for a hostname with a capital letter: a lowercase one the map misses (its mapping
    // removed by hand) gets the edge's 404, never a redirect to itself.
    const caseRoute = routes.find((r) => r['@id'] === CASE_ID)!;
    expect(caseRoute.match).toEqual([{ vars_regexp: { '{http.request.host}': { pattern: '[A-Z]' } } }]);
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
    // After the map's route, before the edge's 404.
    expect(routes.map((r) => r['@id']).slice(-2)).toEqual([CASE_ID, FALLBACK_ID]);
    // At most 100 names a host matcher: Caddy compares a longer list exactly.
    const many = { ...a, aliases: Array.from({ length: 230 }, (_, i) => `alias-${String(i).padStart(3, '0')}.example`) };
    const manyRoutes = servers(edgeConfig([many], settings)).berth.routes;
    const groups = caseRoutes(manyRoutes)[0].match as { host: string[] }[];
    expect(groups.map((g) => g.host.length)).toEqual([100, 100, 31]);
    expect(groups.flatMap((g) => g.host)).toEqual(hostMap(manyRoutes).mappings.map((m) => m.input));
  });

  it('gives a hostname that comes twice to the first site that has it (a map refuses a repeated input)', () => {
    const first = { ...a, aliases: ['shared.example'] };
    const second = { ...b, primary: 'shared.example', aliases: ['blog-acme.sites.test', 'own.example'] };
    const routes = servers(edgeConfig([second, first], settings)).berth.routes;
    expect(hostMap(routes).mappings).toEqual([
      { '@id': routeId('a'), input: 'blog-acme.sites.test', outputs: ['127.0.0.1:20001', ''] },
      { input: 'shared.example', outputs: ['', 'https://blog-acme.sites.test'] },
      { input: 'own.example', outputs: ['', 'https://shared.example'] },
    ]);
    // Nor does a case route list one twice (Caddy refuses a repeated name in a host matcher too).
    expect(caseRoutes(routes).map((r) => r.match)).toEqual([
      [{ host: ['blog-acme.sites.test', 'shared.example'] }],
      [{ host: ['own.example'] }],
    ]);
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
    // The HTTPS server's routes but those for another case (a probe sends the hostname as the
    // map has it), without any @id (an @id is unique in a configuration), the proxy telling
    // the sites the request came over HTTPS.
    const https = servers(config).berth.routes;
    expect(sub).toHaveLength(3);
    const [installer, hosts, notRouted] = sub;
    const { '@id': _i, ...installerHttps } = https[0];
    expect(installer).toEqual(installerHttps);
    expect(hosts.match).toBeUndefined();
    expect(hosts.handle[0]).toEqual({ ...hostMap(https), mappings: hostMap(https).mappings.map(({ '@id': _id, ...m }) => m) });
    expect((hosts.handle[1] as { routes: Route[] }).routes).toEqual([
      REDIRECT_ROUTE,
      { ...PROXY_ROUTE, handle: [{ ...PROXY_ROUTE.handle[0], headers: { request: { set: { 'X-Forwarded-Proto': ['https'] } } } }] },
    ]);
    const { '@id': _f, ...unroutedHttps } = https[3];
    expect(notRouted).toEqual(unroutedHttps);
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
    // A hostname in another case goes to the site's URL over HTTP, on the edge's port.
    expect(caseRoutes(servers(config).berth.routes)[0].handle[0]).toMatchObject({
      headers: { Location: ['http://blog-acme.sites.test:8080{http.request.uri}'] },
    });
  });

  it("names each site <site>-<tenant>.<base domain> and gives its URL without the scheme's own port", () => {
    expect(platformHostname('blog', 'acme', 'sites.example.com')).toBe('blog-acme.sites.example.com');
    expect(edgeUrl('blog-acme.sites.test', settings)).toBe('https://blog-acme.sites.test/');
    expect(edgeUrl('blog-acme.sites.test', { ...settings, httpsPort: 8443 })).toBe('https://blog-acme.sites.test:8443/');
    expect(edgeUrl('blog-acme.sites.test', { ...settings, tls: 'off', httpPort: 80 })).toBe('http://blog-acme.sites.test/');
  });
});
