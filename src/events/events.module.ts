import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { RedisModule } from '../redis/redis.module';
import { RevocationsModule } from '../revocations/revocations.module';
import { EventFeedService } from './event-feed.service';
import { EventsController } from './events.controller';
import { EventsResolver } from './events.resolver';
import { EventsService } from './events.service';
import { NotifyQueue } from './notify.queue';

/** The event log every state change is written to, its feed (REST, GraphQL, live), and the queue that hands each event on. */
@Module({
  imports: [DatabaseModule, RedisModule, RevocationsModule],
  controllers: [EventsController],
  providers: [EventsService, NotifyQueue, EventFeedService, EventsResolver],
  exports: [EventsService, NotifyQueue],
})
export class EventsModule {}
