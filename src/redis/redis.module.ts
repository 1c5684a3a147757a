import { Module } from '@nestjs/common';
import { RedisService } from './redis.service';

/** Redis: locks, rate limits, schedules and pub/sub (BullMQ opens its own connections from it). */
@Module({ providers: [RedisService], exports: [RedisService] })
export class RedisModule {}
