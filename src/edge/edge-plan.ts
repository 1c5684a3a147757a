import { createHash } from 'node:crypto';

/**
 * The edge's configuration as a pure function of the sites it routes: Caddy's JSON
 * config, loaded whole through its admin API. Berth's database is the source of truth, so
 * the edge is compared with this and loaded again whenever they differ (after Caddy
 * restarted empty, a route was changed by hand, or a site came or went).
 */

/** One site as the edge serves it. */
export interface EdgeRoute {
  siteId: string;
  /** The hostname the site answers on. */
  primary: string;
  /** Its other hostnames, which redirect (301) to the primary. */
  aliases: string[];
  /** Where the edge reaches the site: host:port. */
  upstream: string;
}

export interface EdgeSettings {
  /** The admin API address Caddy listens on (kept in the config Caddy is given). */
  adminListen: string;
  httpPort: number;
  httpsPort: number;
  tls: 'internal' | 'acme' | 'off';
  acmeEmail?: string;
  /** Berth's endpoint that says whether the edge may get a certificate for a hostname. */
  askUrl?: string;
  /**
   * With TLS, requests to the HTTP port carrying this value in {@link PROBE_HEADER} are routed
   * to the sites as over HTTPS (Berth's probes: plain HTTP, any hostname on one kept-alive
   * connection, no handshake per site); every other request is redirected to HTTPS.
   */
  probeToken?: string;
}

/** The @id of the route that answers hostnames Berth does not route. */
export const FALLBACK_ID = 'berth-unrouted';
export const routeId = (siteId: string) => `site-${siteId}`;
/** Marks the edge's own answer for a hostname it does not route (lowercase, as Node gives headers). */
export const UNROUTED_HEADER = 'x-berth-unrouted';
/** Marks the edge's own redirect to HTTPS: a probe that meets it did not take the probe route (the edge's configuration is not Berth's yet). */
export const TO_HTTPS_HEADER = 'x-berth-to-https';
/** The header that lets Berth's probes reach the sites over plain HTTP (see {@link EdgeSettings.probeToken}). */
export const PROBE_HEADER = 'X-Berth-Probe';

/** `<site>-<tenant>.<base>`: a DNS label of at most 63 characters (site and tenant names are shorter). */
export const platformHostname = (site: string, tenant: string, baseDomain: string) => `${site}-${tenant}.${baseDomain}`;

/** The URL customers reach a hostname at, the port shown only when it is not the scheme's own. */
export function edgeUrl(hostname: string, s: Pick<EdgeSettings, 'tls' | 'httpPort' | 'httpsPort'>): string {
  const [scheme, port, standard] = s.tls === 'off' ? ['http', s.httpPort, 80] : ['https', s.httpsPort, 443];
  return `${scheme}://${hostname}${port === standard ? '' : `:${port}`}/`;
}

/** The @ids of the hostnames' map and of the routes for hostnames sent in another case. */
export const HOSTS_ID = 'berth-hosts';
export const CASE_ID = 'berth-case';

/** The placeholders the hostnames' map sets: where a hostname's site is, and where an alias redirects. */
const UPSTREAM = '{berth.upstream}';
const REDIRECT = '{berth.redirect}';
const NOT_EMPTY = (placeholder: string) => [{ not: [{ vars: { [placeholder]: [''] } }] }];

/**
 * Every routed hostname in one `map` handler (Caddy's): a primary maps to its site's upstream,
 * an alias to its primary's URL. One handler however many sites, where a route of its own for
 * each site (a `reverse_proxy` handler each, as until 2026-12-06) made Caddy provision ten
 * thousand proxies on every load: at 10,000 sites with an alias each, a load took 4.7 s and
 * Caddy 915 MiB; with the map 1.3 s and 306 MiB (README, The edge). Sites in `sorted`'s
 * order, primary first: should a hostname ever come twice, the first keeps it, as the first
 * matching route did (a map refuses a repeated input). The map compares hostnames exactly, in
 * lowercase.
 */
function hostMap(sorted: EdgeRoute[], s: EdgeSettings) {
  const seen = new Set<string>();
  const mappings: Record<string, unknown>[] = [];
  /** Each site's primary URL and the hostnames the map gives it. */
  const sites: { target: string; hostnames: string[] }[] = [];
  for (const r of sorted) {
    const primary = r.primary.toLowerCase();
    const site = { target: edgeUrl(primary, s).replace(/\/$/, ''), hostnames: [] as string[] };
    const add = (hostname: string, outputs: [string, string], id?: string) => {
      if (seen.has(hostname)) return;
      seen.add(hostname);
      site.hostnames.push(hostname);
      mappings.push({ ...(id ? { '@id': id } : {}), input: hostname, outputs });
    };
    add(primary, [r.upstream, ''], routeId(r.siteId));
    for (const alias of r.aliases.map((a) => a.toLowerCase()).sort()) add(alias, ['', site.target]);
    if (site.hostnames.length) sites.push(site);
  }
  return {
    sites,
    handler: { handler: 'map', source: '{http.request.host}', destinations: [UPSTREAM, REDIRECT], mappings, defaults: ['', ''] },
  };
}

/**
 * Caddy's host matcher (2.6) compares a list of more than 100 names exactly (a binary search),
 * a shorter one whatever the case: the case routes give it at most 100 a matcher.
 */
const HOST_MATCHER_CASELESS_MAX = 100;
const inGroupsOf = <T>(items: T[], n: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / n) }, (_, i) => items.slice(i * n, (i + 1) * n));

/**
 * The sites' routes. One route for every routed hostname: the hostnames' map, then an alias's
 * redirect (301, keeping the path) or the site's proxy (in one route, so that neither is ever
 * without the map). No host matcher lists the hostnames there: at 10,000 sites with an alias
 * each, one made every load 2.5 s longer (bench/edge.ts: 3.65 s against 1.15-1.33 s). A
 * hostname sent in another case (`Shop.Example.com`: hostnames are case-insensitive, the map
 * is not) reaches, only if it has a capital letter, its site's route in the case routes,
 * which redirects (308) to the site's primary URL. Anything else is the edge's 404: so is a
 * routed hostname whose mapping is missing (removed by hand), never a redirect to itself.
 */
function sitesRoutes(sorted: EdgeRoute[], s: EdgeSettings) {
  const { sites, handler } = hostMap(sorted, s);
  const redirect = {
    match: NOT_EMPTY(REDIRECT),
    terminal: true,
    handle: [{ handler: 'static_response', status_code: 301, headers: { Location: [`${REDIRECT}{http.request.uri}`] } }],
  };
  const proxy = { match: NOT_EMPTY(UPSTREAM), terminal: true, handle: [{ handler: 'reverse_proxy', upstreams: [{ dial: UPSTREAM }] }] };
  const serve = [
    noInstaller,
    ...(sites.length ? [{ '@id': HOSTS_ID, handle: [handler, { handler: 'subroute', routes: [redirect, proxy] }] }] : []),
  ];
  const inAnotherCase = {
    '@id': CASE_ID,
    match: [{ vars_regexp: { '{http.request.host}': { pattern: '[A-Z]' } } }],
    handle: [
      {
        handler: 'subroute',
        routes: sites.map(({ target, hostnames: names }) => ({
          match: inGroupsOf(names, HOST_MATCHER_CASELESS_MAX).map((group) => ({ host: group })),
          terminal: true,
          handle: [{ handler: 'static_response', status_code: 308, headers: { Location: [`${target}{http.request.uri}`] } }],
        })),
      },
    ],
  };
  return { serve, all: [...serve, inAnotherCase, unrouted] };
}

/** Every hostname the edge answers for, for the ask endpoint and tests. */
export const hostnamesOf = (r: EdgeRoute) => [r.primary, ...r.aliases];

const unrouted = {
  '@id': FALLBACK_ID,
  terminal: true,
  handle: [{ handler: 'static_response', status_code: 404, headers: { [UNROUTED_HEADER]: ['1'] }, body: 'No site here.\n', close: true }],
};

/** WordPress's installer and config writer: never served through the edge, installed or not. */
export const INSTALLER_PATHS = ['/wp-admin/install.php', '/wp-admin/setup-config.php'];
export const NO_INSTALLER_ID = 'berth-no-installer';
const noInstaller = {
  '@id': NO_INSTALLER_ID,
  match: [{ path: INSTALLER_PATHS.flatMap((p) => [p, `${p}/*`]) }],
  terminal: true,
  handle: [{ handler: 'static_response', status_code: 404, body: 'Not found.\n' }],
};

/**
 * Berth's probes on the HTTP port: the same routes as over HTTPS (copies: an @id is unique in
 * a configuration) but those for hostnames in another case (a probe sends the primary as
 * Berth has it), for requests that carry the token, which the sites never see. The sites
 * are told the request came over HTTPS, as a customer's does: WordPress then renders the page
 * (a theme's fatal error is a 500) rather than redirecting to HTTPS.
 */
function probeRoute(routes: Record<string, unknown>[], token: string) {
  return {
    match: [{ header: { [PROBE_HEADER]: [token] } }],
    terminal: true,
    handle: [
      { handler: 'headers', request: { delete: [PROBE_HEADER] } },
      { handler: 'subroute', routes: probeCopy(routes) },
    ],
  };
}

/**
 * A deep copy of `routes` for the probes: without any @id (the hostnames' map carries one a
 * site, and an @id is unique in a configuration), every proxy (nested in a subroute too)
 * telling the site the request came over HTTPS.
 */
const probeCopy = (routes: Record<string, unknown>[]): Record<string, unknown>[] =>
  JSON.parse(
    JSON.stringify(routes, (key, value: unknown) => {
      if (key === '@id') return undefined;
      const h = value as Record<string, unknown> | null;
      return h && typeof h === 'object' && h.handler === 'reverse_proxy'
        ? { ...h, headers: { request: { set: { 'X-Forwarded-Proto': ['https'] } } } }
        : value;
    }),
  ) as Record<string, unknown>[];

/**
 * The whole Caddy configuration: the admin API as Caddy was started with it (a load replaces
 * everything, the admin block included), one HTTPS server routing each site's hostnames to
 * it (certificates on demand, each one allowed by Berth's ask endpoint), and an HTTP server
 * that redirects to HTTPS (but for Berth's probes); with TLS off, the HTTP server routes the
 * sites instead.
 */
export function edgeConfig(routes: EdgeRoute[], s: EdgeSettings): Record<string, unknown> {
  return marked(unmarkedConfig(routes, s));
}

function unmarkedConfig(routes: EdgeRoute[], s: EdgeSettings): Record<string, unknown> {
  const sorted = [...routes].sort((a, b) => (a.siteId < b.siteId ? -1 : a.siteId > b.siteId ? 1 : 0));
  const sites = sitesRoutes(sorted, s);
  const routesOfSites = sites.all;
  const base = {
    admin: { listen: s.adminListen, config: { persist: false } },
    logging: { logs: { default: { level: LOG_LEVEL } } },
  };
  if (s.tls === 'off') {
    return {
      ...base,
      apps: {
        http: {
          http_port: s.httpPort,
          servers: { berth: { listen: [`:${s.httpPort}`], automatic_https: { disable: true }, routes: routesOfSites } },
        },
      },
    };
  }
  const port = s.httpsPort === 443 ? '' : `:${s.httpsPort}`;
  const issuer = s.tls === 'acme' ? { module: 'acme', ...(s.acmeEmail ? { email: s.acmeEmail } : {}) } : { module: 'internal' };
  return {
    ...base,
    apps: {
      http: {
        http_port: s.httpPort,
        https_port: s.httpsPort,
        servers: {
          berth: { listen: [`:${s.httpsPort}`], automatic_https: { disable_redirects: true }, routes: routesOfSites },
          'berth-http': {
            listen: [`:${s.httpPort}`],
            automatic_https: { disable: true },
            routes: [
              ...(s.probeToken ? [probeRoute([...sites.serve, unrouted], s.probeToken)] : []),
              {
                '@id': 'berth-to-https',
                handle: [
                  {
                    handler: 'static_response',
                    status_code: 308,
                    headers: { Location: [`https://{http.request.host}${port}{http.request.uri}`], [TO_HTTPS_HEADER]: ['1'] },
                  },
                ],
              },
            ],
          },
        },
      },
      tls: {
        automation: {
          policies: [{ issuers: [issuer], on_demand: true }],
          ...(s.askUrl ? { on_demand: { ask: s.askUrl } } : {}),
        },
      },
      pki: { certificate_authorities: { local: { install_trust: false } } },
    },
  };
}

const LOG_LEVEL = 'WARN';

/**
 * The configuration with its marker: an @id made of a digest of the rest, on its smallest
 * object (the default log's). Caddy answers GET /id/<marker> with those few bytes only while
 * it runs exactly this configuration, so a pass asks that instead of reading and comparing
 * the whole (megabytes at 10,000 sites). Caddy drops @id fields before it decodes a config.
 */
function marked(config: Record<string, unknown>): Record<string, unknown> {
  const marker = `berth-config-${createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 32)}`;
  return { ...config, logging: { logs: { default: { '@id': marker, level: LOG_LEVEL } } } };
}

/** The marker of a configuration {@link edgeConfig} made. */
export const markerOf = (config: Record<string, unknown>): string =>
  (config.logging as { logs: { default: { '@id': string } } }).logs.default['@id'];
