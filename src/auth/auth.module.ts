import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { DatabaseModule } from '../database/database.module';
import { EventsModule } from '../events/events.module';
import { RedisModule } from '../redis/redis.module';
import { ApiKeysService } from './api-keys.service';
import { AuthGuard } from './auth.guard';
import { RevocationsModule } from '../revocations/revocations.module';

/** API keys, and the guard that authenticates (and rate-limits) every request with them. */
@Module({
  imports: [DatabaseModule, RedisModule, EventsModule, RevocationsModule],
  providers: [ApiKeysService, { provide: APP_GUARD, useClass: AuthGuard }],
  exports: [ApiKeysService, RevocationsModule],
})
export class AuthModule {}
