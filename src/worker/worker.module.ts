import { Module } from '@nestjs/common';
import { BackupsModule } from '../backups/backups.module';
import { DatabaseModule } from '../database/database.module';
import { EdgeModule } from '../edge/edge.module';
import { EventsModule } from '../events/events.module';
import { JobsModule } from '../jobs/jobs.module';
import { MonitorModule } from '../monitor/monitor.module';
import { RedisModule } from '../redis/redis.module';
import { SitesModule } from '../sites/sites.module';
import { TenantsModule } from '../tenants/tenants.module';
import { SiteWorker } from './site.worker';

/** Runs the jobs: each site job through the site runner, tenant deletions through theirs. */
@Module({
  imports: [BackupsModule, DatabaseModule, RedisModule, EdgeModule, EventsModule, JobsModule, SitesModule, TenantsModule, MonitorModule],
  providers: [SiteWorker],
  exports: [SiteWorker],
})
export class WorkerModule {}
