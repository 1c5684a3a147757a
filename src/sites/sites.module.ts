import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { EdgeModule } from '../edge/edge.module';
import { EventsModule } from '../events/events.module';
import { JobsModule } from '../jobs/jobs.module';
import { RedisModule } from '../redis/redis.module';
import { HostPorts } from './host-ports';
import { SiteEngine } from './site-engine';
import { SitePlanner } from './site-planner';
import { SiteOwner } from './site-owner';
import { SiteRunner } from './site-runner.service';
import { SiteStatusWriter } from './site-status';
import { SitesController } from './sites.controller';
import { SitesResolver } from './sites.resolver';
import { SitesService } from './sites.service';

/** Sites: their API, their plans, and the runner that applies them for jobs. */
@Module({
  imports: [DatabaseModule, RedisModule, DockerModule, EdgeModule, EventsModule, JobsModule],
  controllers: [SitesController],
  providers: [SitesService, SitesResolver, SitePlanner, SiteStatusWriter, HostPorts, SiteEngine, SiteRunner, SiteOwner],
  exports: [SitesService, SitePlanner, SiteStatusWriter, SiteRunner, SiteEngine],
})
export class SitesModule {}
