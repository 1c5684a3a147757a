import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { EventsModule } from '../events/events.module';
import { JobsModule } from '../jobs/jobs.module';
import { SitesModule } from '../sites/sites.module';
import { BackupEngine } from './backup-engine';
import { BackupRunner } from './backup-runner.service';
import { BackupsController } from './backups.controller';
import { BackupsResolver } from './backups.resolver';
import { BackupsService } from './backups.service';
import { ResticService } from './restic.service';

/** Backups of sites with restic, and restores from them. */
@Module({
  imports: [DatabaseModule, DockerModule, EventsModule, JobsModule, SitesModule],
  controllers: [BackupsController],
  providers: [BackupsService, BackupsResolver, BackupEngine, BackupRunner, ResticService],
  exports: [BackupRunner, ResticService],
})
export class BackupsModule {}
