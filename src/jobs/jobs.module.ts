import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { EventsModule } from '../events/events.module';
import { RedisModule } from '../redis/redis.module';
import { JobsService } from './jobs.service';

/** Job records and the queue that carries them; what runs a job lives in the worker. */
@Module({ imports: [DatabaseModule, RedisModule, EventsModule], providers: [JobsService], exports: [JobsService] })
export class JobsModule {}
