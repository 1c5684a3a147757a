import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { RedisModule } from '../redis/redis.module';
import { HealthController } from './health.controller';

/** /healthz and /readyz, open to anyone. */
@Module({ imports: [DatabaseModule, RedisModule, DockerModule], controllers: [HealthController] })
export class HealthModule {}
