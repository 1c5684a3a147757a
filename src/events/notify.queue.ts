import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { Queue, type JobsOptions } from 'bullmq';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { MetricsService } from '../metrics/metrics.service';
import { RedisService } from '../redis/redis.service';
import { NOTIFY_QUEUE, NotifyJob, type NotifyPayload, type NotifyPayloads } from './notify.types';

/** Enqueues notification work; job ids are derived from the rows, so repeats collapse. */
@Injectable()
export class NotifyQueue implements OnModuleDestroy {
  readonly queue: Queue<NotifyPayload, void, NotifyJob>;

  constructor(@Inject(BERTH_CONFIG) config: BerthConfig, redis: RedisService, metrics: MetricsService) {
    this.queue = new Queue(NOTIFY_QUEUE, {
      connection: redis.connect({ maxRetriesPerRequest: 3 }),
      defaultJobOptions: {
        attempts: config.BERTH_NOTIFY_ATTEMPTS,
        backoff: { type: 'exponential', delay: config.BERTH_NOTIFY_BACKOFF_MS },
        removeOnComplete: { age: 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    });
    metrics.watchQueue(NOTIFY_QUEUE, this.queue);
  }

  async add<N extends NotifyJob>(name: N, data: NotifyPayloads[N], jobId: string, opts: JobsOptions = {}): Promise<void> {
    await this.queue.add(name, data, { jobId, ...opts });
  }

  /** Dispatch jobs are removed when they fail for good, so the sweeper can try again later. */
  async dispatch(eventId: string, delayMs = 0): Promise<void> {
    await this.add(NotifyJob.Dispatch, { eventId }, `evt-${eventId}`, {
      delay: delayMs,
      removeOnFail: true,
      attempts: 5,
      backoff: { type: 'exponential', delay: 200 },
    });
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close();
  }
}
