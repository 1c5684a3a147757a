import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { EdgeModule } from '../edge/edge.module';
import { JobsModule } from '../jobs/jobs.module';
import { EventsModule } from '../events/events.module';
import { SitesModule } from '../sites/sites.module';
import { DomainsController } from './domains.controller';
import { DomainsResolver } from './domains.resolver';
import { DomainsService } from './domains.service';
import { DomainVerifier } from './domain-verifier';
import { RedisModule } from '../redis/redis.module';

/** Sites' custom domains; the edge routes them. */
@Module({
  imports: [DatabaseModule, RedisModule, EdgeModule, EventsModule, JobsModule, SitesModule],
  controllers: [DomainsController],
  providers: [DomainsService, DomainsResolver, DomainVerifier],
  exports: [DomainVerifier, DomainsService],
})
export class DomainsModule {}
