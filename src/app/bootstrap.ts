import { Logger, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import { json } from 'express';
import type { BerthConfig } from '../config/config';
import { migrate } from '../database/migrator';
import { ApiKeysService } from '../auth/api-keys.service';
import { SiteWorker } from '../worker/site.worker';
import { NotifyWorker } from '../notifications/notify.worker';
import { MonitorService } from '../monitor/monitor.service';
import { DockerEventsService } from '../monitor/docker-events.service';
import { NodeWatchService } from '../monitor/node-watch.service';
import { ReconcilerService } from '../reconcile/reconciler.service';
import { EdgeService } from '../edge/edge.service';
import { DomainVerifier } from '../domains/domain-verifier';
import { AppModule } from './app.module';
import { openApiDocument } from './openapi';
import { MetricsService } from '../metrics/metrics.service';
import { serveMetrics, timeRequests } from '../metrics/http-metrics';

export interface Started {
  app: INestApplication;
  url?: string;
  /** Set only on the very first start when no admin key existed. */
  generatedAdminKey?: string;
  stop(): Promise<void>;
}

/** Starts Berth in the configured role; used by main.ts and by the end-to-end tests. */
export async function startBerth(config: BerthConfig): Promise<Started> {
  const logger = new Logger('Berth');
  if (config.BERTH_RUN_MIGRATIONS) {
    const applied = await migrate(config.DATABASE_URL);
    if (applied.length) logger.log(`applied migrations: ${applied.join(', ')}`);
  }
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forConfig(config), {
    bodyParser: false,
    logger: levels(config.BERTH_LOG_LEVEL),
  });
  const metrics = app.get(MetricsService);
  app.use(timeRequests(metrics));
  app.use(json({ limit: config.BERTH_MAX_BODY_BYTES }));
  // No enableShutdownHooks(): main.ts stops the workers first (letting running jobs
  // finish) and only then closes the app, so connections outlive the jobs that use them.
  const generatedAdminKey = await app.get(ApiKeysService).ensureAdminKey();

  // The worker role: site jobs, notifications, probing and the Docker event stream.
  const runsWorker = config.BERTH_ROLE !== 'api';
  const sites = app.get(SiteWorker);
  const notify = app.get(NotifyWorker);
  const monitor = app.get(MonitorService);
  const dockerEvents = app.get(DockerEventsService);
  const nodeWatch = app.get(NodeWatchService);
  const reconciler = app.get(ReconcilerService);
  const edge = app.get(EdgeService);
  const domains = app.get(DomainVerifier);
  if (runsWorker) {
    await reconciler.assertCurrentNames();
    sites.start();
    notify.start();
    monitor.start();
    dockerEvents.start();
    nodeWatch.start();
    reconciler.start();
    domains.start();
  }

  let url: string | undefined;
  if (config.BERTH_ROLE !== 'worker') {
    SwaggerModule.setup('docs', app, () => openApiDocument(app));
    await app.listen(config.PORT, config.HOST);
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    edge.askUrl ??= `${url.replace('://0.0.0.0', '://127.0.0.1').replace('://[::]', '://127.0.0.1')}/v1/edge/ask`;
  } else {
    await app.init();
  }
  // The worker role serves no API, but its jobs, probes and passes are measured where they run.
  const metricsServer =
    config.BERTH_ROLE === 'worker' && config.BERTH_METRICS_PORT !== undefined
      ? await serveMetrics(metrics, config.BERTH_METRICS_PORT, config.HOST)
      : undefined;
  // The edge is loaded once this process knows its ask endpoint (its own API, by default).
  if (runsWorker) edge.start();
  return {
    app,
    url,
    generatedAdminKey,
    stop: async () => {
      if (runsWorker) {
        edge.stop();
        domains.stop();
        reconciler.stop();
        dockerEvents.stop();
        await nodeWatch.stop();
        await Promise.all([monitor.stop(), sites.stop(), notify.stop()]);
      }
      metricsServer?.close();
      await app.close();
    },
  };
}

function levels(level: BerthConfig['BERTH_LOG_LEVEL']) {
  const all = ['error', 'warn', 'log', 'debug', 'verbose'] as const;
  return all.slice(0, all.indexOf(level) + 1) as unknown as ('error' | 'warn' | 'log' | 'debug' | 'verbose')[];
}
