import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { EdgeModule } from '../edge/edge.module';
import { EventsModule } from '../events/events.module';
import { ReconcileModule } from '../reconcile/reconcile.module';
import { RedisModule } from '../redis/redis.module';
import { DockerEventsService } from './docker-events.service';
import { MonitorService } from './monitor.service';
import { NodeWatchService } from './node-watch.service';
import { SiteHealthService } from './site-health.service';

/** Watches running sites: HTTP probes, the Engine's event stream (a Swarm's nodes instead), and each site's health. */
@Module({
  imports: [DatabaseModule, RedisModule, DockerModule, EdgeModule, EventsModule, ReconcileModule],
  providers: [MonitorService, SiteHealthService, DockerEventsService, NodeWatchService],
  exports: [MonitorService, DockerEventsService, NodeWatchService],
})
export class MonitorModule {}
