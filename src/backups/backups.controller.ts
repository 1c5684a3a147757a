import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Res } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import type { Response } from 'express';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
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

@ApiTags('backups')
@ApiBearerAuth()
@Controller('v1')
export class BackupsController {
  constructor(
    private readonly backups: BackupsService,
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
  ) {}

  @Post('sites/:id/backups')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: BackupAndJobView, description: 'The backup (PENDING) and the job that takes it' })
  create(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.create(actor, id);
  }

  @Get('sites/:id/backups')
  @ApiOkResponse({ type: [BackupView], description: 'Newest first' })
  list(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.list(actor, id);
  }

  @Get('backups')
  @ApiOkResponse({ type: [BackupView], description: "The tenant's backups, newest first; ?deletedSites=true: those of its deleted sites" })
  listTenant(@Actor() actor: Principal, @Query() filter: BackupFilterArgs) {
    return this.backups.listTenant(actor, filter);
  }

  @Post('sites/:id/restore')
  @HttpCode(202)
  @ApiAcceptedResponse({ description: '{job}: the restore job, which takes a checkpoint first and rolls back to it on failure' })
  restore(@Actor() actor: Principal, @Param('id') id: string, @Body() input: RestoreInput) {
    return this.backups.restore(actor, id, input);
  }

  @Post('sites/:id/clone')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: SiteAndJobView, description: "The new site and its provisioning job, which copies the source's backup in" })
  clone(@Actor() actor: Principal, @Param('id') id: string, @Body() input: CloneInput) {
    return this.backups.clone(actor, id, input);
  }

  @Post('sites/:id/push')
  @HttpCode(202)
  @ApiAcceptedResponse({
    type: BackupAndJobView,
    description: "The backup of this site taken for the push, and the target's restore job (a checkpoint first, rolled back to on failure)",
  })
  push(@Actor() actor: Principal, @Param('id') id: string, @Body() input: PushInput) {
    return this.backups.push(actor, id, input);
  }

  @Get('sites/:id/backup-policy')
  @ApiOkResponse({ type: BackupPolicyView })
  policy(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.policy(actor, id);
  }

  @Put('sites/:id/backup-policy')
  @ApiOkResponse({ type: BackupPolicyView, description: 'Scheduled backups and how many are kept, within the limits the operator set' })
  setPolicy(@Actor() actor: Principal, @Param('id') id: string, @Body() input: BackupPolicyInput) {
    return this.backups.setPolicy(actor, id, input);
  }

  @Get('backups/:id')
  @ApiOkResponse({ type: BackupView })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.get(actor, id);
  }

  /** The backup as a .tar.gz: database.sql and files/ (the whole WordPress folder). */
  @Get('backups/:id/download')
  @ApiProduces('application/gzip')
  @ApiOkResponse({ description: 'A .tar.gz holding database.sql and files/; a connection cut short means the download failed' })
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
  remove(@Actor() actor: Principal, @Param('id') id: string) {
    return this.backups.delete(actor, id);
  }
}
