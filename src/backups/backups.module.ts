import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { DomainsModule } from '../domains/domains.module';
import { EventsModule } from '../events/events.module';
import { JobsModule } from '../jobs/jobs.module';
import { RedisModule } from '../redis/redis.module';
import { SitesModule } from '../sites/sites.module';
import { BackupEngine } from './backup-engine';
import { BackupRunner } from './backup-runner.service';
import { BackupScheduler } from './backup-scheduler.service';
import { BackupsController } from './backups.controller';
import { BackupsResolver } from './backups.resolver';
import { BackupsService } from './backups.service';
import { ResticService } from './restic.service';
import { ResticPeers } from './restic-peers';

/** Backups of sites with restic, and restores from them. */
@Module({
  imports: [DatabaseModule, DockerModule, DomainsModule, EventsModule, JobsModule, RedisModule, SitesModule],
  controllers: [BackupsController],
  providers: [BackupsService, BackupsResolver, BackupEngine, BackupRunner, BackupScheduler, ResticService, ResticPeers],
  exports: [BackupRunner, BackupScheduler, ResticService],
})
export class BackupsModule {}
