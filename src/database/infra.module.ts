import { Global, Module } from '@nestjs/common';
import { PrismaService } from './prisma.service';
import { RedisService } from '../redis/redis.service';
import { DockerService } from '../docker/docker.service';
import { ContainerStateService } from '../docker/container-state.service';
import { ApplyService } from '../docker/apply.service';
import { EventsService } from '../events/events.service';
import { NotifyQueue } from '../notifications/notify.queue';
import { MailerService } from '../notifications/mailer.service';

/** The adapters to the outside world (PostgreSQL, Redis, the Docker Engine, SMTP) and the event log. */
@Global()
@Module({
  providers: [PrismaService, RedisService, DockerService, ContainerStateService, ApplyService, EventsService, NotifyQueue, MailerService],
  exports: [PrismaService, RedisService, DockerService, ContainerStateService, ApplyService, EventsService, NotifyQueue, MailerService],
})
export class InfraModule {}
