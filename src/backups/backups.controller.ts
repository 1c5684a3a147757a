import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Res } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import type { Response } from 'express';
import { ApiAcceptedResponse, ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import { Actor, type Principal } from '../common/principal';
import { BackupsService } from './backups.service';
import {
  BackupAndJobView,
  BackupFilterArgs,
  BackupPolicyInput,
  BackupPolicyView,
  BackupView,
  CloneInput,
  PushInput,
  RestoreInput,
} from './dto/backup.dto';
import { SiteAndJobView } from '../sites/dto/site.dto';
import { JobAcceptedView } from '../jobs/dto/job.dto';
import { Operation } from '../common/api-operation';
import { ErrorCode } from '../common/errors';

@ApiTags('backups')
@Controller('v1')
export class BackupsController {
  constructor(
    private readonly backups: BackupsService,
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
  ) {}

  @Post('sites/:id/backups')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: BackupAndJobView, description: 'The backup (PENDING) and the job that takes it' })
  @Operation('createBackup', {
    summary: 'Back a site up',
    description: "One restic snapshot of the site's database (a consistent dump) and its files.",
    errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.SITE_DELETED, ErrorCode.SITE_BUSY, ErrorCode.QUOTA_EXCEEDED, ErrorCode.UNAVAILABLE],
  })
  create(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.create(actor, id);
  }

  @Get('sites/:id/backups')
  @ApiOkResponse({ type: [BackupView], description: 'Newest first' })
  @Operation('listSiteBackups', { summary: "List a site's backups", errors: [ErrorCode.SITE_NOT_FOUND] })
  list(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.list(actor, id);
  }

  @Get('backups')
  @ApiOkResponse({ type: [BackupView], description: "The tenant's backups, newest first; ?deletedSites=true: those of its deleted sites" })
  @Operation('listBackups', {
    summary: 'List backups',
    description:
      "The tenant's backups, newest first; ?deletedSites=true lists those of its deleted sites, kept for the operator's retention.",
  })
  listTenant(@Actor() actor: Principal, @Query() filter: BackupFilterArgs) {
    return this.backups.listTenant(actor, filter);
  }

  @Post('sites/:id/restore')
  @HttpCode(202)
  @ApiAcceptedResponse({
    type: JobAcceptedView,
    description: 'The restore job, which takes a checkpoint first and rolls back to it on failure',
  })
  @Operation('restoreSite', {
    summary: 'Restore a site from a backup',
    description: 'The job takes a checkpoint backup first and rolls back to it if the restore fails.',
    errors: [
      ErrorCode.SITE_NOT_FOUND,
      ErrorCode.SITE_DELETED,
      ErrorCode.SITE_BUSY,
      ErrorCode.BACKUP_NOT_FOUND,
      ErrorCode.BACKUP_NOT_AVAILABLE,
      ErrorCode.UNAVAILABLE,
    ],
  })
  restore(@Actor() actor: Principal, @Param('id') id: string, @Body() input: RestoreInput) {
    return this.backups.restore(actor, id, input);
  }

  @Post('sites/:id/clone')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: SiteAndJobView, description: "The new site and its provisioning job, which copies the source's backup in" })
  @Operation('cloneSite', {
    summary: 'Clone a site',
    description: 'A new site made from a backup of this one (the latest, or backupId), under a new name and hostname.',
    errors: [
      ErrorCode.SITE_NOT_FOUND,
      ErrorCode.SITE_DELETED,
      ErrorCode.SITE_NAME_TAKEN,
      ErrorCode.DOMAIN_TAKEN,
      ErrorCode.QUOTA_EXCEEDED,
      ErrorCode.BACKUP_NOT_FOUND,
      ErrorCode.BACKUP_NOT_AVAILABLE,
      ErrorCode.UNAVAILABLE,
    ],
  })
  clone(@Actor() actor: Principal, @Param('id') id: string, @Body() input: CloneInput) {
    return this.backups.clone(actor, id, input);
  }

  @Post('sites/:id/push')
  @HttpCode(202)
  @ApiAcceptedResponse({
    type: BackupAndJobView,
    description: "The backup of this site taken for the push, and the target's restore job (a checkpoint first, rolled back to on failure)",
  })
  @Operation('pushSite', {
    summary: 'Push a site onto another',
    description: 'Staging to live: backs this site up and restores that backup into the target, which gets a checkpoint first.',
    errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.SITE_DELETED, ErrorCode.SITE_BUSY, ErrorCode.UNAVAILABLE],
  })
  push(@Actor() actor: Principal, @Param('id') id: string, @Body() input: PushInput) {
    return this.backups.push(actor, id, input);
  }

  @Get('sites/:id/backup-policy')
  @ApiOkResponse({ type: BackupPolicyView })
  @Operation('getBackupPolicy', { summary: "Get a site's backup policy", errors: [ErrorCode.SITE_NOT_FOUND] })
  policy(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.policy(actor, id);
  }

  @Put('sites/:id/backup-policy')
  @ApiOkResponse({ type: BackupPolicyView, description: 'Scheduled backups and how many are kept, within the limits the operator set' })
  @Operation('setBackupPolicy', {
    summary: "Set a site's backup policy",
    errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.SITE_DELETED, ErrorCode.QUOTA_EXCEEDED],
  })
  setPolicy(@Actor() actor: Principal, @Param('id') id: string, @Body() input: BackupPolicyInput) {
    return this.backups.setPolicy(actor, id, input);
  }

  @Get('backups/:id')
  @ApiOkResponse({ type: BackupView })
  @Operation('getBackup', { summary: 'Get a backup', errors: [ErrorCode.BACKUP_NOT_FOUND] })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.get(actor, id);
  }

  /** The backup as a .tar.gz: database.sql and files/ (the whole WordPress folder). */
  @Get('backups/:id/download')
  @ApiProduces('application/gzip')
  @ApiOkResponse({ description: 'A .tar.gz holding database.sql and files/; a connection cut short means the download failed' })
  @Operation('downloadBackup', {
    summary: 'Download a backup',
    description: 'A .tar.gz holding database.sql and files/, streamed; a connection cut short means the download failed.',
    errors: [ErrorCode.BACKUP_NOT_FOUND, ErrorCode.BACKUP_NOT_AVAILABLE, ErrorCode.UNAVAILABLE],
  })
  async download(@Actor() actor: Principal, @Param('id') id: string, @Res() res: Response) {
    const { filename, stream, stop } = await this.backups.download(actor, id);
    res.status(200).type('application/gzip').attachment(filename);
    res.on('close', stop);
    // A client that stops reading would keep restic (and its lock, which holds off forget and
    // prune) waiting on a full pipe for ever: the connection is cut once it has been idle.
    res.setTimeout(this.config.BERTH_BACKUP_DOWNLOAD_IDLE_MS, () => res.destroy());
    // A failure once the answer has begun cuts the connection: the client sees an incomplete file, never a complete-looking one.
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  @Delete('backups/:id')
  @ApiOkResponse({ type: BackupView, description: 'The backup, DELETED: its snapshot is forgotten' })
  @Operation('deleteBackup', {
    summary: 'Delete a backup',
    description: 'Its snapshot is forgotten from the repository.',
    errors: [ErrorCode.BACKUP_NOT_FOUND, ErrorCode.BACKUP_NOT_AVAILABLE],
  })
  remove(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.delete(actor, id);
  }
}
