import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { RedisModule } from '../redis/redis.module';
import { RevocationsService } from './revocations.service';

/** API key revocations across processes; its own module, so that the event stream and the logs (which auth depends on) can use it too. */
@Module({
  imports: [DatabaseModule, RedisModule],
  providers: [RevocationsService],
  exports: [RevocationsService],
})
export class RevocationsModule {}
