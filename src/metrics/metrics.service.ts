import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { createHash, timingSafeEqual } from 'node:crypto';

/** A job as the metrics read it when it ends. */
export interface FinishedJob {
  id: string;
  kind: string;
  status: string;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  steps: unknown;
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
/** Step names are fixed strings in the code; anything else is not used as a label value. */
const STEP_NAME = /^[a-z][a-zA-Z ,'/-]{0,80}$/;

/**
 * Berth's Prometheus metrics, on a registry of its own. Labels are bounded by construction:
 * kinds, statuses, step names, route templates and results, never a site, tenant or job id.
 * Counters and histograms count what this process did; the gauges of sites and jobs are
 * read from PostgreSQL at scrape time, so every process answers the same totals.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly jobsFinished = new Counter({
    name: 'berth_jobs_finished_total',
    help: 'Jobs that ended in this process, by kind and final status',
    labelNames: ['kind', 'status'],
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: 'berth_job_duration_seconds',
    help: 'From a job being asked for to its end, by kind and final status',
    labelNames: ['kind', 'status'],
    buckets: [1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
    registers: [this.registry],
  });
  readonly stepDuration = new Histogram({
    name: 'berth_job_step_duration_seconds',
    help: "A job step's duration, by job kind, step and the step's result",
    labelNames: ['kind', 'step', 'status'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly probeDuration = new Histogram({
    name: 'berth_probe_duration_seconds',
    help: "A site probe's duration, by result (up: the site answered; down: it did not)",
    labelNames: ['result'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'berth_reconcile_pass_duration_seconds',
    help: 'One reconciler pass over every site, by result',
    labelNames: ['result'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly reconcileRepairs = new Counter({
    name: 'berth_reconcile_repairs_total',
    help: 'Repair jobs the reconciler enqueued for sites whose containers drifted from their plan',
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: 'berth_notification_deliveries_total',
    help: 'Attempts to deliver a notification, by channel (webhook, email) and result (delivered, failed, refused, recorded)',
    labelNames: ['channel', 'result'],
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'berth_http_request_duration_seconds',
    help: 'REST and GraphQL-over-HTTP requests, by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'berth_rate_limited_total',
    help: 'Requests and GraphQL operations refused by the per-key rate limit',
    registers: [this.registry],
  });
  readonly edgeSyncs = new Counter({
    name: 'berth_edge_syncs_total',
    help: "Passes bringing the edge's (Caddy's) configuration up to date, by result: loaded, unchanged (Caddy had its marker), verified (its whole configuration compared equal), failed",
    labelNames: ['result'],
    registers: [this.registry],
  });

  readonly backupPrunes = new Counter({
    name: 'berth_backup_prunes_total',
    help: "Daily prunes of the backup repository (freeing forgotten snapshots' data), by result: ok, failed",
    labelNames: ['result'],
    registers: [this.registry],
  });

  /** Jobs whose end was counted, so that one published twice is counted once. */
  private readonly counted = new Set<string>();
  /** The BullMQ queues whose depth is read at scrape time (each registers itself). */
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly prisma: PrismaService,
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
  ) {
    collectDefaultMetrics({ register: this.registry });
    // prom-client also exports these sums as gauges named *_total, which Prometheus' naming
    // rules keep for counters (promtool check metrics refuses them): sum() of the breakdowns
    // nodejs_active_handles, _requests and _resources gives the same figures.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      this.registry.removeSingleMetric(name);
    const db = this.prisma;
    const failures = new Counter({
      name: 'berth_metrics_collect_failures_total',
      help: 'Scrapes in which a gauge read from PostgreSQL or Redis could not be read (the gauge was left empty)',
      labelNames: ['gauge'],
      registers: [this.registry],
    });
    const logger = new Logger('Metrics');
    /** A gauge's collect that cannot fail or stall the whole scrape: a dependency down (or slower than 2 s) empties that gauge only, and is counted. */
    const safely = (gauge: string, read: (this: Gauge) => Promise<void>) =>
      async function (this: Gauge): Promise<void> {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            read.call(this),
            new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000))),
          ]);
        } catch (e) {
          this.reset();
          failures.inc({ gauge });
          logger.warn(`${gauge}: ${(e as Error).message}`);
        } finally {
          clearTimeout(timer);
        }
      };
    new Gauge({
      name: 'berth_sites',
      help: 'Sites that are not deleted, by status and health',
      labelNames: ['status', 'health'],
      registers: [this.registry],
      collect: safely('berth_sites', async function () {
        this.reset();
        const rows = await db.site.groupBy({ by: ['status', 'health'], where: { status: { not: 'DELETED' } }, _count: { _all: true } });
        for (const r of rows) this.set({ status: r.status, health: r.health }, r._count._all);
      }),
    });
    new Gauge({
      name: 'berth_jobs_active',
      help: 'Jobs queued or running, by kind and status',
      labelNames: ['kind', 'status'],
      registers: [this.registry],
      collect: safely('berth_jobs_active', async function () {
        this.reset();
        const rows = await db.job.groupBy({
          by: ['kind', 'status'],
          where: { status: { in: ['QUEUED', 'RUNNING'] } },
          _count: { _all: true },
        });
        for (const r of rows) this.set({ kind: r.kind, status: r.status }, r._count._all);
      }),
    });
    new Gauge({
      name: 'berth_job_oldest_queued_age_seconds',
      help: 'How long the oldest queued job has waited (0: none waits)',
      registers: [this.registry],
      collect: safely('berth_job_oldest_queued_age_seconds', async function () {
        const oldest = await db.job.findFirst({ where: { status: 'QUEUED' }, orderBy: { createdAt: 'asc' }, select: { createdAt: true } });
        this.set(oldest ? Math.max(0, (Date.now() - oldest.createdAt.getTime()) / 1000) : 0);
      }),
    });
    const queues = this.queues;
    new Gauge({
      name: 'berth_queue_jobs',
      help: "BullMQ's jobs by queue and state (waiting, delayed, active, prioritized)",
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      collect: safely('berth_queue_jobs', async function () {
        this.reset();
        for (const [name, queue] of queues) {
          const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
          for (const [state, count] of Object.entries(counts)) this.set({ queue: name, state }, count);
        }
      }),
    });
  }

  /** Makes a queue's depth part of every scrape. */
  watchQueue(name: string, queue: Queue): void {
    this.queues.set(name, queue);
  }

  /** Counts a job's end and observes its duration and its steps'; a job seen before is skipped. */
  jobEnded(job: FinishedJob): void {
    if (!TERMINAL.has(job.status) || this.counted.has(job.id)) return;
    this.counted.add(job.id);
    if (this.counted.size > 10_000) this.counted.delete(this.counted.values().next().value as string);
    this.jobsFinished.inc({ kind: job.kind, status: job.status });
    if (job.finishedAt)
      this.jobDuration.observe({ kind: job.kind, status: job.status }, (job.finishedAt.getTime() - job.createdAt.getTime()) / 1000);
    for (const step of Array.isArray(job.steps)
      ? (job.steps as { name?: unknown; status?: unknown; startedAt?: unknown; finishedAt?: unknown }[])
      : []) {
      if (typeof step.name !== 'string' || typeof step.startedAt !== 'string' || typeof step.finishedAt !== 'string') continue;
      const seconds = (Date.parse(step.finishedAt) - Date.parse(step.startedAt)) / 1000;
      if (!(seconds >= 0)) continue;
      this.stepDuration.observe(
        {
          kind: job.kind,
          step: STEP_NAME.test(step.name) ? step.name : 'other',
          status: step.status === 'failed' ? 'failed' : 'succeeded',
        },
        seconds,
      );
    }
  }

  /**
   * Whether a caller may read /metrics: with BERTH_METRICS_TOKEN set, whoever shows it;
   * without, loopback callers only, and not through a proxy on the same host (a request
   * that says it was forwarded came from elsewhere).
   */
  mayRead(authorization: string | undefined, remoteAddress: string | undefined, forwarded = false): boolean {
    const token = this.config.BERTH_METRICS_TOKEN;
    if (token) return authorization !== undefined && sameSecret(authorization, `Bearer ${token}`);
    if (forwarded) return false;
    return remoteAddress === '127.0.0.1' || remoteAddress === '::1' || remoteAddress === '::ffff:127.0.0.1';
  }
}

function sameSecret(a: string, b: string): boolean {
  const digest = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(digest(a), digest(b));
}
