import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { EdgeModule } from '../edge/edge.module';
import { EventsModule } from '../events/events.module';
import { JobsModule } from '../jobs/jobs.module';
import { RedisModule } from '../redis/redis.module';
import { SitesModule } from '../sites/sites.module';
import { ReconcilerService } from './reconciler.service';

/** Compares every site's plan with the engine and enqueues the repairs. */
@Module({
  imports: [DatabaseModule, RedisModule, DockerModule, EdgeModule, EventsModule, JobsModule, SitesModule],
  providers: [ReconcilerService],
  exports: [ReconcilerService],
})
export class ReconcileModule {}
