import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { EdgeModule } from '../edge/edge.module';
import { EventsModule } from '../events/events.module';
import { JobsModule } from '../jobs/jobs.module';
import { RedisModule } from '../redis/redis.module';
import { HostPorts } from './host-ports';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { DockerSiteEngine, SiteEngine } from './site-engine';
import { SwarmSiteEngine } from './swarm-site-engine';
import { SitePlanner } from './site-planner';
import { SiteOwner } from './site-owner';
import { SiteRunner } from './site-runner.service';
import { SiteStatusWriter } from './site-status';
import { SitesController } from './sites.controller';
import { SitesResolver } from './sites.resolver';
import { RevocationsModule } from '../revocations/revocations.module';
import { SitesService } from './sites.service';

/** Sites: their API, their plans, and the runner that applies them for jobs. */
@Module({
  imports: [DatabaseModule, RedisModule, DockerModule, EdgeModule, EventsModule, JobsModule, RevocationsModule],
  controllers: [SitesController],
  providers: [
    SitesService,
    SitesResolver,
    SitePlanner,
    SiteStatusWriter,
    HostPorts,
    DockerSiteEngine,
    SwarmSiteEngine,
    // The one place the backend is chosen: jobs see a SiteEngine.
    {
      provide: SiteEngine,
      inject: [BERTH_CONFIG, DockerSiteEngine, SwarmSiteEngine],
      useFactory: (config: BerthConfig, docker: DockerSiteEngine, swarm: SwarmSiteEngine) =>
        config.BERTH_ENGINE === 'swarm' ? swarm : docker,
    },
    SiteRunner,
    SiteOwner,
  ],
  exports: [SitesService, SitePlanner, SiteStatusWriter, SiteRunner, SiteEngine, SwarmSiteEngine],
})
export class SitesModule {}
