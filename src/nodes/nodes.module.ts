import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { EventsModule } from '../events/events.module';
import { NodesController } from './nodes.controller';
import { NodesResolver } from './nodes.resolver';
import { NodesService } from './nodes.service';

/** The cluster's nodes (BERTH_ENGINE=swarm): listing, cordoning, and where a new tenant goes. */
@Module({
  imports: [DatabaseModule, DockerModule, EventsModule],
  controllers: [NodesController],
  providers: [NodesService, NodesResolver],
  exports: [NodesService],
})
export class NodesModule {}
