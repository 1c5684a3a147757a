import { Module } from '@nestjs/common';
import { BackupsModule } from '../backups/backups.module';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { EventsModule } from '../events/events.module';
import { JobsModule } from '../jobs/jobs.module';
import { RedisModule } from '../redis/redis.module';
import { SitesModule } from '../sites/sites.module';
import { NodesController } from './nodes.controller';
import { NodesResolver } from './nodes.resolver';
import { NodesService } from './nodes.service';
import { TenantMoveService } from './tenant-move.service';

/** The cluster's nodes (BERTH_ENGINE=swarm): listing, cordoning, evacuating, and where a tenant goes. */
@Module({
  imports: [BackupsModule, DatabaseModule, DockerModule, EventsModule, JobsModule, RedisModule, SitesModule],
  controllers: [NodesController],
  providers: [NodesService, NodesResolver, TenantMoveService],
  exports: [NodesService, TenantMoveService],
})
export class NodesModule {}
