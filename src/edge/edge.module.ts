import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { RedisModule } from '../redis/redis.module';
import { CaddyClient } from './caddy.client';
import { EdgeController } from './edge.controller';
import { EdgeService } from './edge.service';

/** The edge in front of every site (Caddy), kept in step with the database. */
@Module({
  imports: [DatabaseModule, RedisModule],
  controllers: [EdgeController],
  providers: [CaddyClient, EdgeService],
  exports: [EdgeService],
})
export class EdgeModule {}
