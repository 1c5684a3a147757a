import { Args, ID, Int, Mutation, Parent, Query, ResolveField, Resolver, Subscription } from '@nestjs/graphql';
import { Actor, type Principal } from '../common/principal';
import { distinctViews, startingWith } from '../common/distinct';
import { project, type Selection } from '../common/graphql-selection';
import { Selected } from '../common/selected.decorator';
import { JobsService, jobChannel } from '../jobs/jobs.service';
import { currentJobView } from '../jobs/job-views';
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

  @Mutation(() => SiteAndJobView, {
    description:
      "Creates a site: answers at once with the site and the job that builds it (the tenant's database server if it has none, the site's database, its WordPress container and its route on the edge)",
  })
  createSite(
    @Actor() actor: Principal,
    @Args('input', { description: 'The new site' }) input: CreateSiteInput,
    @Args('idempotencyKey', {
      nullable: true,
      description: 'Sending the same key again answers the same site and job (1 to 200 printable ASCII characters, per tenant)',
    })
    key?: string,
  ) {
    return this.service.create(actor, input, key);
  }

  @Query(() => [SiteView], {
    description:
      "Sites, oldest first: the caller's tenant's (an admin key: every tenant's, or tenantId's); DELETED ones only when status asks for them",
  })
  sites(@Actor() actor: Principal, @Args() filter: SiteFilterArgs) {
    return this.service.list(actor, filter);
  }

  @Query(() => SiteView, { description: "One site, a deleted one too; another tenant's answers SITE_NOT_FOUND, like a missing one" })
  site(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The site' }) id: string) {
    return this.service.getLazily(actor, id);
  }

  /** Asks the Docker Engine only when the query selects `containers`, and only for one site. */
  @ResolveField('containers', () => [ContainerView], {
    nullable: true,
    description: 'Live from the Docker Engine (single-site queries only; null in lists)',
  })
  containers(@Parent() site: SiteView) {
    return this.service.liveContainersOf(site);
  }

  @ResolveField('restartCount', () => Int, { description: 'Restarts of the WordPress container by Docker (its restart policy)' })
  restartCount(@Parent() site: SiteView) {
    return this.service.restartCountOf(site);
  }

  @Query(() => JobView, { description: 'One job: its status, steps and progress' })
  job(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The job' }) id: string) {
    return this.jobs.get(actor, id);
  }

  @Mutation(() => JobView, {
    description:
      "Changes a site's settings: its job replaces the WordPress container (volume and database stay) and rolls back if the new one does not answer",
  })
  async updateSite(
    @Actor() actor: Principal,
    @Args('id', { type: () => ID, description: 'The site' }) id: string,
    @Args('input', { description: 'What to change' }) input: UpdateSiteInput,
  ) {
    return (await this.service.update(actor, id, input)).job;
  }

  @Mutation(() => JobView, {
    description:
      'Cancels a job: a queued one at once (undone unless a newer request came after it), a running one at its next step, leaving the site FAILED; tenant deletions and running restores cannot be cancelled',
  })
  cancelJob(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The job' }) id: string) {
    return this.jobs.cancel(actor, id);
  }

  @Mutation(() => JobView, { description: 'Starts a site: answers the job that does it' })
  async startSite(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The site' }) id: string) {
    return (await this.service.act(actor, id, 'start')).job;
  }

  @Mutation(() => JobView, { description: 'Stops a site (its WordPress container stops; its data stays): answers the job that does it' })
  async stopSite(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The site' }) id: string) {
    return (await this.service.act(actor, id, 'stop')).job;
  }

  @Mutation(() => JobView, { description: 'Restarts a site: answers the job that does it' })
  async restartSite(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The site' }) id: string) {
    return (await this.service.act(actor, id, 'restart')).job;
  }

  @Mutation(() => JobView, {
    description:
      'Deletes a site (its containers, volume and database; its backups are kept for BERTH_BACKUP_KEEP_DELETED_DAYS): answers the job that does it',
  })
  async deleteSite(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The site' }) id: string) {
    return (await this.service.act(actor, id, 'delete')).job;
  }

  /**
   * The site as it is once subscribed, then each change the subscriber can see, once: a
   * notice is read as the site's current view, and one that shows the selected fields as the
   * last one sent is not sent.
   */
  @Subscription(() => SiteView, {
    description: 'The site as it is now, then each time it changes, once per change of the fields selected',
    resolve: (view: SiteView) => view,
  })
  async siteUpdated(
    @Args('id', { type: () => ID, description: 'The site' }) id: string,
    @Actor() actor: Principal,
    @Selected() selection: Selection,
  ) {
    return distinctViews(
      startingWith({ id }, await this.service.watch(actor, id)),
      () => this.service.getLazily(actor, id),
      (view) => project(view, selection),
    );
  }

  /**
   * The job as it is once subscribed, then each change the subscriber can see, once. A notice
   * is read as the job's current row, so a subscriber never gets an older state after a newer
   * one (a notice published before the subscription's first read can arrive after it); states
   * written in quick succession may come as one. With `{ status progress }` selected, a step
   * starting (same progress) is not a change. A job gone from the database (its tenant deleted)
   * is sent as its notice said.
   */
  @Subscription(() => JobView, {
    description:
      'The job as it is now, then each time it changes, once per change of the fields selected; never an older state after a newer one',
    resolve: (view: JobView) => view,
  })
  async jobUpdated(
    @Args('id', { type: () => ID, description: 'The job' }) id: string,
    @Actor() actor: Principal,
    @Selected() selection: Selection,
  ) {
    await this.jobs.get(actor, id);
    return distinctViews(
      startingWith<JobView | null>(null, await this.redis.subscribe<JobView>(jobChannel(id))),
      currentJobView(() => this.jobs.get(actor, id)),
      (view) => project(view, selection),
    );
  }
}
