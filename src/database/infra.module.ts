import { Global, Module } from '@nestjs/common';
import { PrismaService } from './prisma.service';
import { RedisService } from '../redis/redis.service';
import { DockerService } from '../docker/docker.service';
import { ApplyService } from '../docker/apply.service';
import { EventsService } from '../events/events.service';

/** The adapters to the outside world: PostgreSQL, Redis, the Docker Engine. */
@Global()
@Module({
  providers: [PrismaService, RedisService, DockerService, ApplyService, EventsService],
  exports: [PrismaService, RedisService, DockerService, ApplyService, EventsService],
})
export class InfraModule {}
