import { Args, ID, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { Actor, type Principal } from '../common/principal';
import { JobView } from '../jobs/dto/job.dto';
import { SiteAndJobView, SiteView } from '../sites/dto/site.dto';
import { BackupsService } from './backups.service';
import {
  BackupAndJobView,
  BackupFilterArgs,
  BackupPolicyView as BackupPolicy,
  BackupPolicyInput,
  BackupView,
  CloneInput,
  PushInput,
  RestoreInput,
} from './dto/backup.dto';

@Resolver(() => SiteView)
export class BackupsResolver {
  constructor(private readonly backups: BackupsService) {}

  @Query(() => [BackupView], {
    name: 'backups',
    description: "The tenant's backups, newest first: of one site, of its deleted sites (deletedSites: true), or all",
  })
  tenantBackups(@Actor() actor: Principal, @Args() filter: BackupFilterArgs) {
    return this.backups.listTenant(actor, filter);
  }

  @Query(() => BackupView, { description: "One backup; another tenant's answers BACKUP_NOT_FOUND, like a missing one" })
  backup(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The backup' }) id: string) {
    return this.backups.get(actor, id);
  }

  @Mutation(() => BackupAndJobView, { description: 'Backs the site up (database and files): a job takes the snapshot' })
  createBackup(@Actor() actor: Principal, @Args('siteId', { type: () => ID, description: 'The site to back up' }) siteId: string) {
    return this.backups.create(actor, siteId);
  }

  @Mutation(() => JobView, { description: 'Puts a backup back; the job takes a checkpoint first and rolls back to it on failure' })
  async restoreSite(
    @Actor() actor: Principal,
    @Args('siteId', { type: () => ID, description: 'The site to put the backup back into' }) siteId: string,
    @Args('input', { description: 'Which backup, and what of it' }) input: RestoreInput,
  ) {
    return (await this.backups.restore(actor, siteId, input)).job;
  }

  @Mutation(() => SiteAndJobView, {
    description: 'A new site made from a backup of this one (a clone, a staging copy, a deleted site back)',
  })
  cloneSite(
    @Actor() actor: Principal,
    @Args('siteId', { type: () => ID, description: 'The source site (a deleted one too)' }) siteId: string,
    @Args('input', { description: 'The new site' }) input: CloneInput,
  ) {
    return this.backups.clone(actor, siteId, input);
  }

  @Mutation(() => BackupAndJobView, {
    description: 'Copies this site (staging) onto another of its tenant (live); the target gets a checkpoint first',
  })
  pushSite(
    @Actor() actor: Principal,
    @Args('siteId', { type: () => ID, description: 'The site whose content is copied (the staging copy)' }) siteId: string,
    @Args('input', { description: 'The target site, and what to copy' }) input: PushInput,
  ) {
    return this.backups.push(actor, siteId, input);
  }

  @Mutation(() => BackupView, { description: "Forgets the backup's snapshot; answers the backup, DELETED (its row stays)" })
  deleteBackup(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The backup' }) id: string) {
    return this.backups.delete(actor, id);
  }

  @Mutation(() => BackupPolicy, { description: "Sets the site's scheduled backups and how many are kept" })
  setBackupPolicy(
    @Actor() actor: Principal,
    @Args('siteId', { type: () => ID, description: 'The site' }) siteId: string,
    @Args('input', { description: 'The new schedule and retention' }) input: BackupPolicyInput,
  ) {
    return this.backups.setPolicy(actor, siteId, input);
  }

  @ResolveField('backupPolicy', () => BackupPolicy, { description: "The site's scheduled backups and how many are kept" })
  sitePolicy(@Actor() actor: Principal, @Parent() site: SiteView) {
    return this.backups.policy(actor, site.id);
  }

  @ResolveField('backups', () => [BackupView], { description: 'Backups of the site, newest first (at most 500)' })
  siteBackups(@Actor() actor: Principal, @Parent() site: SiteView) {
    return this.backups.list(actor, site.id);
  }
}
