import { Inject, Injectable, Logger } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { DesiredState, Health, SiteStatus } from '../generated/prisma/enums';
import { RedisService } from '../redis/redis.service';
import { EdgeService, PRIMARY_DOMAIN } from '../edge/edge.service';
import { get as httpGet } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { publishedHost } from '../common/site-url';
import { nextHealth } from './health';
import { SiteHealthService } from './site-health.service';

const DUE = 'berth:monitor:due';

/** What a probe needs of a site. */
export interface ProbedSite {
  id: string;
  name: string;
  hostPort: number | null;
  health: Health;
  tenant: { slug: string };
  domains?: { hostname: string }[];
}
const fails = (id: string) => `berth:monitor:fails:${id}`;

// Atomically takes the sites whose probe is due and leases them (ARGV[3]: until when a
// probe can last), so that any number of workers share the probing and a site is never
// probed twice at once; the probe's end books the next one (BOOK), unless the site was
// unwatched meanwhile.
const CLAIM = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], m) end
return due`;
// KEYS[2]: the site's failures in a row, cleared by a probe that succeeded (ARGV[3] = '1'):
// one round trip at the end of every probe.
const BOOK = `if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) end`;

/**
 * Probes every running site over HTTP. One sorted set in Redis is the schedule (score =
 * when the next probe is due), spread over the interval; each worker claims due sites in
 * small batches and keeps at most BERTH_PROBE_CONCURRENCY probes in flight.
 */
@Injectable()
export class MonitorService {
  private readonly logger = new Logger('Monitor');
  private timers: NodeJS.Timeout[] = [];
  /** The sites this worker is probing now (a job's `settled` may make one due mid-probe). */
  private readonly probing = new Set<string>();
  private ticking = false;
  /** The last claim took as many sites as there was room for: more may be due. */
  private backlog = false;
  private stopped = false;
  private readonly latencyWritten = new Map<string, number>();

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly health: SiteHealthService,
    private readonly edge: EdgeService,
    private readonly metrics: MetricsService,
  ) {}

  start(): void {
    this.stopped = false;
    const tickMs = Math.max(100, Math.min(500, this.config.BERTH_PROBE_INTERVAL_MS / 4));
    this.timers = [
      setInterval(() => void this.tick().catch((e: Error) => this.logger.warn(`tick: ${e.message}`)), tickMs),
      setInterval(() => void this.sync().catch((e: Error) => this.logger.warn(`sync: ${e.message}`)), 10_000),
    ];
    this.timers.forEach((t) => t.unref());
    void this.sync().catch((e: Error) => this.logger.warn(`sync: ${e.message}`));
  }

  /**
   * No probe starts after this; resolves once the running ones have booked their next one
   * (at most a probe's timeout and a booking later), so that closing Redis loses none.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    this.timers = [];
    const deadline = Date.now() + 2 * this.config.BERTH_PROBE_TIMEOUT_MS + 1000;
    while (this.probing.size && Date.now() < deadline) await delay(50);
  }

  /** Puts a site on the schedule (or moves its next probe to `at`). */
  async watch(siteId: string, at = Date.now()): Promise<void> {
    await this.redis.client.zadd(DUE, at, siteId);
  }

  /**
   * After a job brought the site up: failures counted while the job had the container down
   * do not carry over, and the next probe comes at `at`.
   */
  async settled(siteId: string, at: number): Promise<void> {
    await this.redis.client.multi().del(fails(siteId)).zadd(DUE, at, siteId).exec();
  }

  /**
   * What a finished job means for probing: a site it brought up answered HTTP, so it is UP
   * and probed afresh; a site it stopped or deleted is not probed.
   */
  async afterJob(siteId: string, status: SiteStatus): Promise<void> {
    if (status !== SiteStatus.RUNNING) return this.unwatch(siteId);
    await this.health.transition(siteId, Health.UP, 'answered HTTP after the job');
    await this.settled(siteId, Date.now() + this.config.BERTH_PROBE_INTERVAL_MS);
  }

  async unwatch(siteId: string): Promise<void> {
    await this.redis.client.multi().zrem(DUE, siteId).del(fails(siteId)).exec();
  }

  /** Makes the schedule hold exactly the sites that should be running (one worker at a time). */
  async sync(): Promise<void> {
    const lock = await this.redis.tryLock('berth:lock:monitor-sync', 9_000);
    if (!lock) return;
    try {
      const running = await this.prisma.site.findMany({
        where: { desiredState: DesiredState.RUNNING, status: SiteStatus.RUNNING },
        select: { id: true },
      });
      const wanted = new Set(running.map((s) => s.id));
      const scheduled = await this.redis.client.zrange(DUE, 0, -1);
      const now = Date.now();
      const known = new Set(scheduled);
      const add = running.filter((s) => !known.has(s.id));
      if (add.length) {
        // New entries are spread over one interval, so probes do not come in bursts.
        const args = add.flatMap((s) => [now + Math.floor(Math.random() * this.config.BERTH_PROBE_INTERVAL_MS), s.id]);
        await this.redis.client.zadd(DUE, 'NX', ...args);
      }
      const stale = scheduled.filter((id) => !wanted.has(id));
      if (stale.length) await this.redis.client.zrem(DUE, ...stale);
    } finally {
      await lock.release();
    }
  }

  /**
   * Claims the due sites and starts their probes, again and again while there are more due
   * and room for them; a probe that ends while sites wait starts the next claim (so a worker
   * runs up to BERTH_PROBE_CONCURRENCY probes at any time, not that many per tick).
   */
  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      for (;;) {
        const room = this.config.BERTH_PROBE_CONCURRENCY - this.probing.size;
        if (room <= 0) return;
        const now = Date.now();
        const ids = (await this.redis.client.eval(CLAIM, 1, DUE, String(now), String(room), String(now + this.lease()))) as string[];
        this.backlog = ids.length === room;
        if (!ids.length) return;
        const sites = await this.prisma.site.findMany({
          where: { id: { in: ids } },
          select: {
            id: true,
            name: true,
            hostPort: true,
            health: true,
            desiredState: true,
            status: true,
            tenant: { select: { slug: true } },
            domains: PRIMARY_DOMAIN,
          },
        });
        for (const site of sites) {
          // Stopped meanwhile: the claimed sites come round again when their lease ends.
          if (this.stopped) return;
          if (site.desiredState !== DesiredState.RUNNING || site.status !== SiteStatus.RUNNING) continue;
          if (this.probing.has(site.id)) continue;
          this.probing.add(site.id);
          void this.probeAndBook(site);
        }
        if (!this.backlog || this.stopped) return;
      }
    } finally {
      this.ticking = false;
    }
  }

  /** A probe, then its next one booked (unless the site was unwatched meanwhile). */
  private async probeAndBook(site: ProbedSite): Promise<void> {
    const up = await this.probe(site).catch((e: Error) => {
      this.logger.warn(`probe of ${site.id}: ${e.message}`);
      return false;
    });
    await this.redis.client
      .eval(BOOK, 2, DUE, fails(site.id), String(Date.now() + this.config.BERTH_PROBE_INTERVAL_MS), site.id, up ? '1' : '0')
      .catch((e: Error) => this.logger.warn(`booking the next probe of ${site.id}: ${e.message}`));
    this.probing.delete(site.id);
    // Sites are waiting: claim them once a quarter of the room is free (one claim and one
    // query for a batch, not for every probe that ends).
    const room = this.config.BERTH_PROBE_CONCURRENCY - this.probing.size;
    if (this.backlog && room >= Math.ceil(this.config.BERTH_PROBE_CONCURRENCY / 4))
      void this.tick().catch((e: Error) => this.logger.warn(`tick: ${e.message}`));
  }

  /**
   * How long a claimed site stays out of other claims: the longest a probe takes (through
   * the edge, then the site's own port) and one interval. A probe that ends sooner books the
   * next one itself; a worker that dies mid-probe only delays the site's next probe by this.
   * Before the lease, a site was re-claimed every interval even while its last probe still
   * waited out its timeout, so with a timeout longer than the interval several probes of one
   * site ran at once, each deciding from the health read when it began: stale failures could
   * land after a success and mark a recovered site DOWN again.
   */
  private lease(): number {
    return this.config.BERTH_PROBE_INTERVAL_MS + 2 * this.config.BERTH_PROBE_TIMEOUT_MS + 1000;
  }

  /**
   * One probe and what follows from it; true when the site answered. Through the edge, with
   * the site's primary hostname and its routes (over the edge's HTTP port, the site told it
   * is HTTPS), so UP means "reachable the way customers reach it"; when that fails, the
   * site's own port is tried too and the reason says which of the two failed.
   * Without an edge, the site's own port is probed. A success's failures in a row are cleared
   * by the caller, with the booking of the next probe.
   */
  async probe(site: ProbedSite): Promise<boolean> {
    const started = Date.now();
    let failure: string | undefined;
    if (this.edge.probes) {
      const hostname = site.domains?.[0]?.hostname ?? this.edge.hostname(site, site.tenant);
      failure = await this.edge.probe(hostname, this.config.BERTH_PROBE_TIMEOUT_MS);
      if (failure) failure = `through the edge (${hostname}): ${failure}; on its own port: ${(await this.direct(site)) ?? 'answers'}`;
    } else {
      failure = await this.direct(site);
    }
    const ms = Date.now() - started;
    this.metrics.probeDuration.observe({ result: failure ? 'down' : 'up' }, ms / 1000);
    if (!failure) {
      await this.recordLatency(site.id, ms);
      if (site.health !== Health.UP) await this.health.transition(site.id, Health.UP, `answered HTTP in ${ms} ms`);
      return true;
    }
    const [[, n]] = (await this.redis.client.multi().incr(fails(site.id)).expire(fails(site.id), 3600).exec()) as [[null, number]];
    const next = nextHealth(site.health, false, n, this.config.BERTH_PROBE_FAILURES);
    if (next !== site.health) await this.health.transition(site.id, next, `${n} probe(s) failed in a row: ${failure}`);
    return false;
  }

  /** Why the site's own port does not answer HTTP below 500, or undefined when it does. */
  private direct(site: { hostPort: number | null }): Promise<string | undefined> {
    if (!site.hostPort) return Promise.resolve('no published port');
    const timeout = this.config.BERTH_PROBE_TIMEOUT_MS;
    return new Promise((resolve) => {
      // node:http rather than fetch: about half the CPU a request (0.35 against 0.63 ms,
      // measured on this project's build machine).
      const req = httpGet(
        {
          host: publishedHost(this.config.BERTH_PUBLISH_ADDRESS),
          port: site.hostPort,
          path: '/',
          agent: false,
          signal: AbortSignal.timeout(timeout),
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve((res.statusCode ?? 0) >= 500 ? `HTTP ${res.statusCode}` : undefined));
          res.on('error', (e: Error) => resolve(e.message));
        },
      );
      req.on('error', (e: Error & { code?: string }) =>
        resolve(e.name === 'AbortError' || e.name === 'TimeoutError' ? `no answer within ${timeout} ms` : (e.code ?? e.message)),
      );
    });
  }

  /** Latency is written at most once a minute per site, to spare the database. */
  private async recordLatency(siteId: string, ms: number): Promise<void> {
    const last = this.latencyWritten.get(siteId) ?? 0;
    if (Date.now() - last < 60_000) return;
    this.latencyWritten.set(siteId, Date.now());
    await this.prisma.site.update({ where: { id: siteId }, data: { lastProbeMs: ms } });
  }
}
