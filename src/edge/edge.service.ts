import { Inject, Injectable, Logger } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service';
import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';

import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { RedisService } from '../redis/redis.service';
import { CaddyClient } from './caddy.client';
import {
  edgeConfig,
  edgeUrl,
  hostnamesOf,
  markerOf,
  INSTALLER_PATHS,
  platformHostname,
  PROBE_HEADER,
  TO_HTTPS_HEADER,
  UNROUTED_HEADER,
  type EdgeRoute,
  type EdgeSettings,
} from './edge-plan';
import { stableStringify } from '../common/json';
import { publishedHost, siteUrl } from '../common/site-url';
import { names } from '../docker/object-names';

const LOCK = 'berth:lock:edge';
/**
 * One pass in this many reads Caddy's whole configuration and compares it (a change made by
 * hand keeps the marker); the others ask Caddy for the marker only (see {@link markerOf}).
 */
const WHOLE_EVERY = 12;

/**
 * A site's primary domain as the edge routes it (verified), as a relation to include: the
 * hostname the site's public URL is on, when it has one (the oldest, should there ever be two).
 */
export const PRIMARY_DOMAIN = {
  where: { primary: true, verifiedAt: { not: null } },
  select: { hostname: true },
  orderBy: { createdAt: 'asc' },
} as const;

/** A site the edge routes, as {@link ROUTED_SITES_SQL} reads it. */
interface RoutedSite {
  id: string;
  name: string;
  hostPort: number | null;
  tenantSlug: string;
  /** Its verified domains (pending ones, waiting for their TXT record, are not routed yet), oldest first. */
  domains: string[];
  primaryDomain: string | null;
}

/**
 * The sites meant to run, with their verified domains, oldest first: should two sites ever
 * spell the same platform hostname, the older keeps it.
 */
const routedSitesSql = (withPort: boolean) => `
  SELECT s.id, s.name, s."hostPort", t.slug AS "tenantSlug",
    COALESCE(array_agg(d.hostname ORDER BY d."createdAt", d.hostname) FILTER (WHERE d.id IS NOT NULL), '{}') AS domains,
    (array_agg(d.hostname ORDER BY d."createdAt", d.hostname) FILTER (WHERE d."primary"))[1] AS "primaryDomain"
  FROM "Site" s
  JOIN "Tenant" t ON t.id = s."tenantId"
  LEFT JOIN "Domain" d ON d."siteId" = s.id AND d."verifiedAt" IS NOT NULL
  WHERE s."desiredState" = 'RUNNING' AND s.status <> 'DELETED'${withPort ? ' AND s."hostPort" IS NOT NULL' : ''}
  GROUP BY s.id, t.slug
  ORDER BY s."createdAt", s.id`;
const ROUTED_SITES_SQL = routedSitesSql(false);
const ROUTED_SITES_WITH_PORT_SQL = routedSitesSql(true);

/** What the edge answered for a hostname's front page. */
interface Answer {
  status: number;
  /** The edge's own "no site here". */
  unrouted: boolean;
  /** A redirect to WordPress's installer: the site is not installed. */
  installer: boolean;
  /** The edge's own redirect to HTTPS: a probe that did not take the probe route. */
  toHttps: boolean;
}

/**
 * Keeps the edge (Caddy) serving exactly the sites the database says should be served: a
 * pass compares Caddy's running configuration with the one made from the database and loads
 * it whole when they differ, so changes that arrive together cost one reload. Passes run
 * every BERTH_EDGE_SYNC_MS, after every job, and within a job that brings a site up.
 */
@Injectable()
export class EdgeService {
  private readonly logger = new Logger('Edge');
  private timer?: NodeJS.Timeout;
  private pending?: NodeJS.Timeout;
  private root?: string;
  /**
   * The ask endpoint: BERTH_EDGE_ASK_URL, else the API at HOST and PORT (so every process of
   * an installation gives the edge the same configuration), else (PORT=0) this process's own
   * API once it listens.
   */
  askUrl?: string;
  /**
   * What lets Berth's probes through the edge over plain HTTP (with TLS): derived from the
   * encryption key, so every process of an installation gives the edge the same one (without
   * a key, which only development allows, it is the same everywhere).
   */
  private readonly probeToken?: string;
  /** The probes' connections to the edge: a few, kept alive, shared by every site. */
  private readonly probeAgent: HttpAgent;
  private passes = 0;
  /** The next pass reads Caddy's whole configuration (something showed that Caddy does not run Berth's). */
  private wholeNext = false;
  private lastWholeAt = 0;
  /** The configuration last made, and what it was made from: made again only when that changed. */
  private made?: { from: string; config: Record<string, unknown>; hostnames: Set<string>; text?: string };

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly caddy: CaddyClient,
    private readonly metrics: MetricsService,
  ) {
    const host = ['0.0.0.0', '::'].includes(config.HOST) ? '127.0.0.1' : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
    this.askUrl = config.BERTH_EDGE_ASK_URL ?? (config.PORT ? `http://${host}:${config.PORT}/v1/edge/ask` : undefined);
    if (config.BERTH_TLS !== 'off')
      this.probeToken = createHash('sha256').update(`berth-edge-probe:${config.BERTH_ENCRYPTION_KEY}`).digest('hex').slice(0, 32);
    this.probeAgent = new HttpAgent({ keepAlive: true, maxSockets: config.BERTH_PROBE_CONCURRENCY, scheduling: 'lifo' });
  }

  get enabled(): boolean {
    return this.config.BERTH_EDGE === 'caddy';
  }

  get settings(): EdgeSettings {
    const c = this.config;
    return {
      adminListen: this.caddy.adminListen,
      httpPort: c.BERTH_EDGE_HTTP_PORT,
      httpsPort: c.BERTH_EDGE_HTTPS_PORT,
      tls: c.BERTH_TLS,
      acmeEmail: c.BERTH_ACME_EMAIL,
      askUrl: this.askUrl,
      probeToken: this.probeToken,
    };
  }

  hostname(site: { name: string }, tenant: { slug: string }): string {
    return platformHostname(site.name, tenant.slug, this.config.BERTH_BASE_DOMAIN);
  }

  /** Where customers reach the site: its primary domain, else its platform hostname (null without an edge). */
  publicUrl(site: { name: string }, tenant: { slug: string }, primaryDomain?: string): string | null {
    return this.enabled ? edgeUrl(primaryDomain ?? this.hostname(site, tenant), this.settings) : null;
  }
  /**
   * The URL WordPress answers on: through the edge (its primary domain, else its platform
   * hostname), or without an edge its host port on loopback.
   */
  wordpressUrl(site: { name: string; hostPort: number | null }, tenant: { slug: string }, primaryDomain?: string): string | null {
    return this.enabled ? this.publicUrl(site, tenant, primaryDomain) : siteUrl(this.config.BERTH_PUBLISH_ADDRESS, site.hostPort);
  }

  start(): void {
    if (!this.enabled) return;
    this.timer = setInterval(() => this.soon(0), this.config.BERTH_EDGE_SYNC_MS);
    this.timer.unref();
    this.soon(0);
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.pending);
  }

  /**
   * Asks for a pass shortly; requests that arrive together collapse into one. `whole` when
   * something showed that Caddy does not run Berth's configuration, though it may hold its
   * marker (a change by hand): the pass compares the whole, unless one did within
   * BERTH_EDGE_SYNC_MS (a site the edge rightly does not route must not make every pass whole).
   */
  soon(delayMs = 200, whole = false): void {
    if (whole && Date.now() - this.lastWholeAt >= this.config.BERTH_EDGE_SYNC_MS) this.wholeNext = true;
    if (!this.enabled || this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.sync().catch((e: Error) => this.logger.warn(`sync failed: ${e.message}`));
    }, delayMs);
    this.pending.unref();
  }

  /**
   * The sites the edge should serve: those meant to run, with a port to reach them on (on a
   * single engine), or by their service's name on the edge network (on a Swarm, where the
   * name answers once the service has a task: Caddy resolves it per request).
   */
  async routes(): Promise<EdgeRoute[]> {
    const swarm = this.config.BERTH_ENGINE === 'swarm';
    // One statement, not Prisma's three (sites, tenants, domains): every pass runs it, and at
    // 10,000 sites it was most of a pass's CPU (bench/control-loops.ts).
    const sites = await this.prisma.hotRead<RoutedSite>(
      swarm ? 'berth_edge_routes_swarm' : 'berth_edge_routes',
      swarm ? ROUTED_SITES_SQL : ROUTED_SITES_WITH_PORT_SQL,
      [],
    );
    const address = publishedHost(this.config.BERTH_PUBLISH_ADDRESS);
    const taken = new Set<string>();
    return sites.flatMap((s) => {
      // Lowercase, as the edge's map has them (hostnames are stored so; a probe and a job's
      // wait then ask for the spelling the map knows).
      const platform = this.hostname(s, { slug: s.tenantSlug }).toLowerCase();
      const hostnames = [...(taken.has(platform) ? [] : [platform]), ...s.domains.map((d) => d.toLowerCase())];
      taken.add(platform);
      const primary = s.primaryDomain?.toLowerCase() ?? hostnames[0];
      if (!primary) return [];
      const upstream = swarm ? `${names.wpContainer(this.config.BERTH_INSTANCE, s.tenantSlug, s.name)}:80` : `${address}:${s.hostPort}`;
      return [{ siteId: s.id, primary, aliases: hostnames.filter((h) => h !== primary), upstream }];
    });
  }

  /**
   * One pass, by one process at a time: loads the configuration made from the database if
   * Caddy's differs (empty after a restart, a route changed by hand, sites came or went).
   * Caddy is asked whether it runs that configuration by its marker; one pass in
   * {@link WHOLE_EVERY} (and one that is asked to be `whole`) also reads Caddy's whole
   * configuration and compares it, for a change made by hand. Returns whether it loaded.
   */
  async sync(signal?: AbortSignal, whole = false): Promise<boolean> {
    if (!this.enabled) return false;
    // A short TTL (the holder renews it): a worker killed during a pass holds up the others for seconds, not half a minute.
    const lock = await this.redis.lock(LOCK, 30_000, 5_000, signal);
    let result = 'failed';
    try {
      const routes = await this.routes();
      const wanted = this.configOf(routes);
      const full = whole || this.wholeNext || this.passes++ % WHOLE_EVERY === 0;
      this.wholeNext = false;
      if (full) this.lastWholeAt = Date.now();
      // The marker also on a whole pass: Caddy 2.6 keeps a configuration it failed to load as
      // its own though it does not run it (the marker's index is made only by a load that works).
      const same = (await this.caddy.has(markerOf(wanted))) && (!full || stableStringify(await this.caddy.config()) === this.wantedText());
      if (same) {
        result = full ? 'verified' : 'unchanged';
        return false;
      }
      signal?.throwIfAborted();
      await this.caddy.load(wanted);
      result = 'loaded';
      this.logger.log(`edge configuration loaded: ${routes.length} site(s)`);
      return true;
    } finally {
      this.metrics.edgeSyncs.inc({ result });
      await lock.release();
    }
  }

  /** The configuration for `routes`, made again only when they (or the settings) changed since the last pass. */
  private configOf(routes: EdgeRoute[]): Record<string, unknown> {
    const settings = this.settings;
    const from = JSON.stringify([settings, routes]);
    if (this.made?.from !== from)
      this.made = { from, config: edgeConfig(routes, settings), hostnames: new Set(routes.flatMap(hostnamesOf)) };
    return this.made.config;
  }

  /** The configuration last made ({@link configOf}) as compared with Caddy's: made once per configuration (megabytes at 10,000 sites). */
  private wantedText(): string {
    const made = this.made as NonNullable<typeof this.made>;
    return (made.text ??= stableStringify(made.config));
  }

  /** Whether the edge may serve (and get a certificate for) `hostname`: only names Berth routes. */
  async isRouted(hostname: string): Promise<boolean> {
    const base = `.${this.config.BERTH_BASE_DOMAIN}`;
    const name = hostname.toLowerCase().replace(/\.$/, '');
    if (!name.endsWith(base)) {
      const domains = await this.prisma.$queryRaw<{ one: number }[]>`
        SELECT 1 AS one FROM "Domain" d JOIN "Site" s ON s.id = d."siteId"
        WHERE d.hostname = ${name} AND d."verifiedAt" IS NOT NULL AND s.status <> 'DELETED' AND s."desiredState" = 'RUNNING' LIMIT 1`;
      return domains.length > 0;
    }
    const label = name.slice(0, -base.length);
    const found = await this.prisma.$queryRaw<{ one: number }[]>`
      SELECT 1 AS one FROM "Site" s JOIN "Tenant" t ON t.id = s."tenantId"
      WHERE s.name || '-' || t.slug = ${label} AND s.status <> 'DELETED' AND s."desiredState" = 'RUNNING' LIMIT 1`;
    return found.length > 0;
  }

  /**
   * Brings the edge up to date and waits until it serves `hostname` (any answer below 500
   * from the site, not the edge's own "no site here"). With ACME certificates the wait would
   * depend on public DNS, so there the route being loaded is enough.
   */
  async serve(hostname: string, signal: AbortSignal): Promise<void> {
    if (!this.enabled) return;
    await this.sync(signal);
    if (this.config.BERTH_TLS === 'acme') return;
    const deadline = Date.now() + this.config.BERTH_HTTP_READY_TIMEOUT_MS;
    let last: string;
    for (;;) {
      signal.throwIfAborted();
      try {
        const { status, unrouted, installer } = await this.fetchStatus(hostname, signal);
        if (status < 500 && !unrouted && !installer) return;
        last = unrouted ? 'the edge does not route it yet' : installer ? 'WordPress shows its installer' : `HTTP ${status}`;
        // Not routed: a pass that lost a race with a newer load helps, or one that finds a route
        // removed by hand (the whole configuration compared).
        if (unrouted) await this.sync(signal, true);
      } catch (e) {
        signal.throwIfAborted();
        this.forgetRootOn(e);
        last = (e as Error).message;
      }
      if (Date.now() > deadline)
        throw new Error(`the edge did not serve ${hostname} within ${this.config.BERTH_HTTP_READY_TIMEOUT_MS} ms: ${last}`);
      await delay(200, undefined, { signal });
    }
  }

  /**
   * A head start for serve(): loads the edge's configuration with `hostname`'s route and has
   * the edge make its certificate (one request through it, whatever it answers). Never fails
   * but when stopped: serve() does the same again, and says what is wrong if it still is.
   */
  async prepare(hostname: string, signal: AbortSignal): Promise<string> {
    if (!this.enabled) return 'no edge';
    try {
      await this.sync(signal);
      if (this.config.BERTH_TLS !== 'acme') await this.fetchStatus(hostname, signal);
      return 'route loaded';
    } catch (e) {
      signal.throwIfAborted();
      this.forgetRootOn(e);
      return `not yet: ${(e as Error).message}`;
    }
  }

  /**
   * Whether probes go through the edge: whenever there is one. They use its HTTP port with
   * the probe token (see {@link EdgeSettings.probeToken}), so with TLS no probe waits on a
   * handshake (nor, with ACME, on public DNS), and any number of sites share a few kept-alive
   * connections. What they do not see is the HTTPS side: with internal TLS a job checks the
   * site's certificate when it brings the site up; with ACME nothing of Berth's does.
   */
  get probes(): boolean {
    return this.enabled;
  }

  /** Why the edge does not serve `hostname` (an answer of 500 or more, none, or not routed), or undefined when it does. */
  async probe(hostname: string, timeoutMs: number): Promise<string | undefined> {
    try {
      const { status, unrouted, installer, toHttps } = await this.retried(() =>
        this.request('probe', hostname, AbortSignal.timeout(timeoutMs)),
      );
      if (toHttps) {
        // Caddy restarted with another configuration (or a hand edit, which may keep the marker):
        // it is compared whole and loaded again soon.
        this.soon(0, true);
        return "the edge does not let Berth's probes through yet (its configuration is not Berth's)";
      }
      if (unrouted) {
        // A hostname Berth's configuration routes: the probes' route changed by hand, which
        // keeps the configuration's marker, so the next pass compares the whole.
        if (this.made?.hostnames.has(hostname)) this.soon(0, true);
        return 'the edge does not route it';
      }
      if (installer) return 'WordPress shows its installer (it is not installed)';
      return status >= 500 ? `HTTP ${status}` : undefined;
    } catch (e) {
      const err = e as Error & { code?: string };
      // A request gives up after 3 s whatever the probe's timeout (see request()).
      return err.name === 'TimeoutError' || err.name === 'AbortError'
        ? `no answer within ${Math.min(timeoutMs, 3000)} ms`
        : (err.code ?? err.message);
    }
  }

  /** The edge's CA changed (its data was reset): its root is fetched again next time. */
  private forgetRootOn(e: unknown): void {
    if (/CERT|SIGNATURE|ISSUER/.test((e as { code?: string }).code ?? '')) this.root = undefined;
  }

  /** GET / for `hostname` through the edge on loopback, as a customer would (HTTPS trusting the internal CA, unless TLS is off). */
  private async fetchStatus(hostname: string, signal: AbortSignal): Promise<Answer> {
    const tls = this.config.BERTH_TLS !== 'off';
    if (tls) this.root ??= await this.caddy.internalRoot();
    return this.retried(() => this.request(tls ? 'https' : 'http', hostname, signal));
  }

  /**
   * Every load of the edge's configuration closes its idle kept-alive connections: a request
   * that met one closing is sent once more on a new one, not counted as a failure.
   */
  private async retried(send: () => Promise<Answer>): Promise<Answer> {
    try {
      return await send();
    } catch (e) {
      if (!(e as { reusedSocket?: boolean }).reusedSocket) throw e;
      return send();
    }
  }

  /**
   * GET / for `hostname`: over HTTPS, over HTTP, or as a probe (HTTP with the probe token, on
   * one pool of kept-alive connections for every site).
   */
  private request(kind: 'https' | 'http' | 'probe', name: string, signal: AbortSignal): Promise<Answer> {
    signal.throwIfAborted();
    // As the edge's map has it (it compares exactly): a browser sends it so too.
    const hostname = name.toLowerCase();
    const tls = kind === 'https';
    const capped = AbortSignal.any([signal, AbortSignal.timeout(3000)]);
    return new Promise((resolve, reject) => {
      const options = {
        host: this.config.BERTH_EDGE_ADDRESS,
        port: tls ? this.config.BERTH_EDGE_HTTPS_PORT : this.config.BERTH_EDGE_HTTP_PORT,
        path: '/',
        headers: kind === 'probe' && this.probeToken ? { host: hostname, [PROBE_HEADER]: this.probeToken } : { host: hostname },
        signal: capped,
        ...(tls ? { servername: hostname, ca: this.root } : {}),
        ...(kind === 'probe' ? { agent: this.probeAgent } : {}),
      };
      const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
        res.resume();
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            unrouted: res.headers[UNROUTED_HEADER] !== undefined,
            installer: INSTALLER_PATHS.some((p) => (res.headers.location ?? '').includes(p)),
            toHttps: res.headers[TO_HTTPS_HEADER] !== undefined,
          }),
        );
        res.on('error', reject);
      });
      req.on('error', (e: Error) => {
        this.forgetRootOn(e);
        // Sent again only when the connection failed, not when time ran out.
        reject(Object.assign(e, { reusedSocket: req.reusedSocket && !capped.aborted }));
      });
      req.end();
    });
  }
}
