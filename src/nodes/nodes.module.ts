import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { EventsModule } from '../events/events.module';
import { JobsModule } from '../jobs/jobs.module';
import { NodesController } from './nodes.controller';
import { NodesResolver } from './nodes.resolver';
import { NodesService } from './nodes.service';

/** The cluster's nodes (BERTH_ENGINE=swarm): listing, cordoning, evacuating, and where a tenant goes. */
@Module({
  imports: [DatabaseModule, DockerModule, EventsModule, JobsModule],
  controllers: [NodesController],
  providers: [NodesService, NodesResolver],
  exports: [NodesService],
})
export class NodesModule {}
