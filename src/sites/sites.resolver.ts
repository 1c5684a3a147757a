import { Args, ID, Int, Mutation, Parent, Query, ResolveField, Resolver, Subscription } from '@nestjs/graphql';
import { Actor, type Principal } from '../common/principal';
import { distinctViews } from '../common/distinct';
import { project, type Selection } from '../common/graphql-selection';
import { Selected } from '../common/selected.decorator';
import { JobsService, jobChannel, revivedJobView } from '../jobs/jobs.service';
import { RedisService } from '../redis/redis.service';
import { ContainerView, CreateSiteInput, SiteAndJobView, SiteFilterArgs, SiteView, UpdateSiteInput } from './dto/site.dto';
import { SitesService } from './sites.service';
import { JobView } from '../jobs/dto/job.dto';

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

  /**
   * Each change of the site the subscriber can see, once: a notice is read as the site's
   * current view, and one that shows the selected fields as the last one sent is not sent.
   */
  @Subscription(() => SiteView, { resolve: (view: SiteView) => view })
  async siteUpdated(@Args('id', { type: () => ID }) id: string, @Actor() actor: Principal, @Selected() selection: Selection) {
    return distinctViews(
      await this.service.watch(actor, id),
      () => this.service.getLazily(actor, id),
      (view) => project(view, selection),
    );
  }

  /**
   * Each change of the job the subscriber can see, once, in the order the worker wrote them
   * (a notice carries the state it was sent for): with `{ status progress }` selected, a step
   * starting (same progress) is not a change.
   */
  @Subscription(() => JobView, { resolve: (view: JobView) => view })
  async jobUpdated(@Args('id', { type: () => ID }) id: string, @Actor() actor: Principal, @Selected() selection: Selection) {
    await this.jobs.get(actor, id);
    return distinctViews(
      await this.redis.subscribe<JobView>(jobChannel(id)),
      async (published) => revivedJobView(published),
      (view) => project(view, selection),
    );
  }
}
