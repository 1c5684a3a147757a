import { Args, ID, Int, Mutation, Parent, Query, ResolveField, Resolver, Subscription } from '@nestjs/graphql';
import { Actor, type Principal } from '../common/principal';
import { JobsService, jobChannel } from '../jobs/jobs.service';
import { RedisService } from '../redis/redis.service';
import { ContainerView, CreateSiteInput, SiteAndJobView, SiteFilterArgs, SiteView, UpdateSiteInput } from './dto/site.dto';
import { SitesService } from './sites.service';
import { JobView } from '../jobs/dto/job.dto';

interface Ctx {
  principal?: Principal;
  req?: { principal?: Principal };
}
const principalOf = (ctx: Ctx) => (ctx.principal ?? ctx.req?.principal) as Principal;

@Resolver(() => SiteView)
export class SitesResolver {
  constructor(
    private readonly service: SitesService,
    private readonly jobs: JobsService,
    private readonly redis: RedisService,
  ) {}

  @Mutation(() => SiteAndJobView)
  createSite(@Actor() actor: Principal, @Args('input') input: CreateSiteInput, @Args('idempotencyKey', { nullable: true }) key?: string) {
    return this.service.create(actor, input, key);
  }

  @Query(() => [SiteView])
  sites(@Actor() actor: Principal, @Args() filter: SiteFilterArgs) {
    return this.service.list(actor, filter);
  }

  @Query(() => SiteView)
  site(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return this.service.getLazily(actor, id);
  }

  /** Asks the Docker Engine only when the query selects `containers`, and only for one site. */
  @ResolveField('containers', () => [ContainerView], {
    nullable: true,
    description: 'Live from the Docker Engine (single-site queries only)',
  })
  containers(@Parent() site: SiteView) {
    return this.service.liveContainersOf(site);
  }

  @ResolveField('restartCount', () => Int, { description: 'Restarts of the WordPress container by Docker (its restart policy)' })
  restartCount(@Parent() site: SiteView) {
    return this.service.restartCountOf(site);
  }

  @Query(() => JobView)
  job(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return this.jobs.get(actor, id);
  }

  @Mutation(() => JobView)
  async updateSite(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string, @Args('input') input: UpdateSiteInput) {
    return (await this.service.update(actor, id, input)).job;
  }

  @Mutation(() => JobView)
  cancelJob(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return this.jobs.cancel(actor, id);
  }

  @Mutation(() => JobView)
  async startSite(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return (await this.service.act(actor, id, 'start')).job;
  }

  @Mutation(() => JobView)
  async stopSite(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return (await this.service.act(actor, id, 'stop')).job;
  }

  @Mutation(() => JobView)
  async restartSite(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return (await this.service.act(actor, id, 'restart')).job;
  }

  @Mutation(() => JobView)
  async deleteSite(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return (await this.service.act(actor, id, 'delete')).job;
  }

  @Subscription(() => SiteView, {
    resolve(this: SitesResolver, _payload: unknown, args: { id: string }, ctx: Ctx) {
      return this.service.getLazily(principalOf(ctx), args.id);
    },
  })
  async siteUpdated(@Args('id', { type: () => ID }) id: string, @Actor() actor: Principal) {
    return this.service.watch(actor, id);
  }

  @Subscription(() => JobView, {
    resolve(this: SitesResolver, _payload: unknown, args: { id: string }, ctx: Ctx) {
      return this.jobs.get(principalOf(ctx), args.id);
    },
  })
  async jobUpdated(@Args('id', { type: () => ID }) id: string, @Actor() actor: Principal) {
    await this.jobs.get(actor, id);
    return this.redis.subscribe(jobChannel(id));
  }
}
