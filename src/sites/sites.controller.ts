import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  ParseBoolPipe,
  ParseIntPipe,
  Patch,
  Post,
  Query,
  Res,
  DefaultValuePipe,
} from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Actor, type Principal } from '../common/principal';
import { BerthError, ErrorCode } from '../common/errors';
import { PageArgs } from '../common/page.dto';
import { JobsService } from '../jobs/jobs.service';
import { CreateSiteInput, SiteAndJobView, SiteFilterArgs, SiteView, UpdateSiteInput } from './dto/site.dto';
import { RevocationsService } from '../revocations/revocations.service';
import { SitesService } from './sites.service';
import { JobAcceptedView, JobView } from '../jobs/dto/job.dto';
import { EventView } from '../events/dto/event.dto';
import { Operation } from '../common/api-operation';

@ApiTags('sites')
@Controller('v1')
export class SitesController {
  constructor(
    private readonly sites: SitesService,
    private readonly jobs: JobsService,
    private readonly revocations: RevocationsService,
  ) {}

  @Post('sites')
  @HttpCode(202)
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Repeating a request with the same key returns the same site and job',
  })
  @ApiAcceptedResponse({ type: SiteAndJobView })
  @Operation('createSite', {
    summary: 'Create a site',
    description:
      "Answers at once with the site (PENDING) and the job that builds it: the tenant's database server if it has none, the site's database, the WordPress container and its route on the edge. Sending the same Idempotency-Key again answers the same site and job.",
    errors: [
      ErrorCode.TENANT_NOT_FOUND,
      ErrorCode.TENANT_SUSPENDED,
      ErrorCode.TENANT_DELETING,
      ErrorCode.SITE_NAME_TAKEN,
      ErrorCode.DOMAIN_TAKEN,
      ErrorCode.QUOTA_EXCEEDED,
      ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ],
  })
  create(@Actor() actor: Principal, @Body() input: CreateSiteInput, @Headers('idempotency-key') key?: string) {
    return this.sites.create(actor, input, key);
  }

  @Get('sites')
  @ApiOkResponse({ type: [SiteView] })
  @Operation('listSites', {
    summary: 'List sites',
    description: "The caller's tenant's sites (an admin key: every tenant's, or ?tenantId=), oldest first.",
  })
  list(@Actor() actor: Principal, @Query() filter: SiteFilterArgs) {
    return this.sites.list(actor, filter);
  }

  @Get('sites/:id')
  @ApiOkResponse({ type: SiteView })
  @Operation('getSite', {
    summary: 'Get a site',
    description: "With its containers' state, its health as the monitor last saw it, and its domains.",
    errors: [ErrorCode.SITE_NOT_FOUND],
  })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.get(actor, id);
  }

  @Patch('sites/:id')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobAcceptedView })
  @Operation('updateSite', {
    summary: 'Change a site',
    description: "Settings, resources or restart policy; the job re-applies the site's containers with the change.",
    errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.SITE_DELETED, ErrorCode.QUOTA_EXCEEDED],
  })
  update(@Actor() actor: Principal, @Param('id') id: string, @Body() input: UpdateSiteInput) {
    return this.sites.update(actor, id, input);
  }

  @Post('sites/:id/start')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobAcceptedView })
  @Operation('startSite', { summary: 'Start a site', errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.SITE_DELETED] })
  start(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.act(actor, id, 'start');
  }

  @Post('sites/:id/stop')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobAcceptedView })
  @Operation('stopSite', {
    summary: 'Stop a site',
    description: 'Its containers stop; its data stays.',
    errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.SITE_DELETED],
  })
  stop(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.act(actor, id, 'stop');
  }

  @Post('sites/:id/restart')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobAcceptedView })
  @Operation('restartSite', { summary: 'Restart a site', errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.SITE_DELETED] })
  restart(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.act(actor, id, 'restart');
  }

  @Delete('sites/:id')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobAcceptedView })
  @Operation('deleteSite', {
    summary: 'Delete a site',
    description: "Removes its containers, its volume and its database; its backups are kept for the operator's retention of deleted sites.",
    errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.SITE_DELETED],
  })
  remove(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.act(actor, id, 'delete');
  }

  @Get('sites/:id/events')
  @ApiOkResponse({ type: [EventView] })
  @Operation('listSiteEvents', { summary: "List a site's events", description: 'Newest first.', errors: [ErrorCode.SITE_NOT_FOUND] })
  events(@Actor() actor: Principal, @Param('id') id: string, @Query() page: PageArgs) {
    return this.sites.events(actor, id, page);
  }

  /** The WordPress container's log as text; with follow=true a stream until the client leaves. */
  @Get('sites/:id/logs')
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'The log as text; with follow=true, new lines as they come' })
  @Operation('getSiteLogs', {
    summary: "Read a site's log",
    description:
      "The WordPress container's output as text; with follow=true the answer stays open and streams new lines until the client leaves.",
    errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.NOT_FOUND],
  })
  async logs(
    @Actor() actor: Principal,
    @Param('id') id: string,
    @Res() res: Response,
    @Query('tail', new DefaultValuePipe(100), ParseIntPipe) tail: number,
    @Query('follow', new DefaultValuePipe(false), ParseBoolPipe) follow: boolean,
  ) {
    if (tail < 0 || tail > 10_000) throw new BerthError(ErrorCode.VALIDATION_FAILED, 'tail must be between 0 and 10000');
    const stream = await this.sites.logs(actor, id, { tail, follow });
    // The client left while the log was asked for: its 'close' has been and gone.
    if (res.socket?.destroyed) {
      stream.destroy();
      return;
    }
    res.status(200).type('text/plain; charset=utf-8');
    // A followed log ends when the key that asked for it is revoked.
    const untie = follow
      ? this.revocations.holdOpen(actor.keyId, () => {
          stream.unpipe(res);
          stream.destroy();
          res.end();
        })
      : () => undefined;
    res.on('close', () => {
      untie();
      stream.destroy();
    });
    // The engine's stream failing mid-follow ends the answer; it never reaches the process.
    stream.on('error', () => res.end());
    stream.pipe(res);
  }

  @Get('jobs/:id')
  @ApiOkResponse({ type: JobView })
  @Operation('getJob', { summary: 'Get a job', description: 'Its status, steps and progress.', errors: [ErrorCode.JOB_NOT_FOUND] })
  job(@Actor() actor: Principal, @Param('id') id: string) {
    return this.jobs.get(actor, id);
  }

  @Post('jobs/:id/cancel')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobView })
  @Operation('cancelJob', {
    summary: 'Cancel a job',
    description:
      'A queued job is cancelled at once; a running one stops at its next step (its site is then FAILED, to be started or changed again). A site deletion or a restore is cancelled only before its first attempt began.',
    errors: [ErrorCode.JOB_NOT_FOUND, ErrorCode.JOB_FINISHED, ErrorCode.JOB_NOT_CANCELLABLE],
  })
  cancel(@Actor() actor: Principal, @Param('id') id: string) {
    return this.jobs.cancel(actor, id);
  }
}
