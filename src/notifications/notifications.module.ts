import { Module } from '@nestjs/common';
import { parseNetworks } from '../common/cidr';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { DatabaseModule } from '../database/database.module';
import { EventsModule } from '../events/events.module';
import { RedisModule } from '../redis/redis.module';
import { MailerService } from './mailer.service';
import { NotifyWorker } from './notify.worker';
import { WebhookTargetPolicy } from './webhook-target';
import { WebhooksController } from './webhooks.controller';
import { WebhooksResolver } from './webhooks.resolver';
import { WebhooksService } from './webhooks.service';

/** Tells owners what happened: each event fanned out to live streams, email and webhooks. */
@Module({
  imports: [DatabaseModule, RedisModule, EventsModule],
  controllers: [WebhooksController],
  providers: [
    WebhooksService,
    WebhooksResolver,
    MailerService,
    NotifyWorker,
    {
      provide: WebhookTargetPolicy,
      inject: [BERTH_CONFIG],
      useFactory: (config: BerthConfig) => new WebhookTargetPolicy(parseNetworks(config.BERTH_WEBHOOK_ALLOWED_NETWORKS)),
    },
  ],
  exports: [NotifyWorker],
})
export class NotificationsModule {}
