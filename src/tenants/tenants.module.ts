import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { BackupsModule } from '../backups/backups.module';
import { DatabaseModule } from '../database/database.module';
import { DockerModule } from '../docker/docker.module';
import { EventsModule } from '../events/events.module';
import { JobsModule } from '../jobs/jobs.module';
import { NodesModule } from '../nodes/nodes.module';
import { RedisModule } from '../redis/redis.module';
import { SitesModule } from '../sites/sites.module';
import { TenantDeletionService } from './tenant-deletion.service';
import { TenantMoveService } from './tenant-move.service';
import { TenantsController } from './tenants.controller';
import { TenantsResolver } from './tenants.resolver';
import { TenantsService } from './tenants.service';

/** Tenants and their keys; deleting one deletes its sites first; moving one to another Swarm node. */
@Module({
  imports: [BackupsModule, DatabaseModule, RedisModule, DockerModule, EventsModule, AuthModule, JobsModule, NodesModule, SitesModule],
  controllers: [TenantsController],
  providers: [TenantsService, TenantsResolver, TenantDeletionService, TenantMoveService],
  exports: [TenantDeletionService, TenantMoveService],
})
export class TenantsModule {}
