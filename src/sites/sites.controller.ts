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
import { ApiAcceptedResponse, ApiBearerAuth, ApiHeader, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Actor, type Principal } from '../common/principal';
import { BerthError, ErrorCode } from '../common/errors';
import { PageArgs } from '../common/page.dto';
import { JobsService } from '../jobs/jobs.service';
import { CreateSiteInput, SiteAndJobView, SiteFilterArgs, SiteView, UpdateSiteInput } from './dto/site.dto';
import { SitesService } from './sites.service';
import { JobView } from '../jobs/dto/job.dto';
import { EventView } from '../events/dto/event.dto';

@ApiTags('sites')
@ApiBearerAuth()
@Controller('v1')
export class SitesController {
  constructor(
    private readonly sites: SitesService,
    private readonly jobs: JobsService,
  ) {}

  @Post('sites')
  @HttpCode(202)
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Repeating a request with the same key returns the same site and job',
  })
  @ApiAcceptedResponse({ type: SiteAndJobView })
  create(@Actor() actor: Principal, @Body() input: CreateSiteInput, @Headers('idempotency-key') key?: string) {
    return this.sites.create(actor, input, key);
  }

  @Get('sites')
  @ApiOkResponse({ type: [SiteView] })
  list(@Actor() actor: Principal, @Query() filter: SiteFilterArgs) {
    return this.sites.list(actor, filter);
  }

  @Get('sites/:id')
  @ApiOkResponse({ type: SiteView })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.get(actor, id);
  }

  @Patch('sites/:id')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobView })
  update(@Actor() actor: Principal, @Param('id') id: string, @Body() input: UpdateSiteInput) {
    return this.sites.update(actor, id, input);
  }

  @Post('sites/:id/start')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobView })
  start(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.act(actor, id, 'start');
  }

  @Post('sites/:id/stop')
  @HttpCode(202)
  stop(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.act(actor, id, 'stop');
  }

  @Post('sites/:id/restart')
  @HttpCode(202)
  restart(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.act(actor, id, 'restart');
  }

  @Delete('sites/:id')
  @HttpCode(202)
  remove(@Actor() actor: Principal, @Param('id') id: string) {
    return this.sites.act(actor, id, 'delete');
  }

  @Get('sites/:id/events')
  @ApiOkResponse({ type: [EventView] })
  events(@Actor() actor: Principal, @Param('id') id: string, @Query() page: PageArgs) {
    return this.sites.events(actor, id, page);
  }

  /** The WordPress container's log as text; with follow=true a stream until the client leaves. */
  @Get('sites/:id/logs')
  async logs(
    @Actor() actor: Principal,
    @Param('id') id: string,
    @Res() res: Response,
    @Query('tail', new DefaultValuePipe(100), ParseIntPipe) tail: number,
    @Query('follow', new DefaultValuePipe(false), ParseBoolPipe) follow: boolean,
  ) {
    if (tail < 0 || tail > 10_000) throw new BerthError(ErrorCode.VALIDATION_FAILED, 'tail must be between 0 and 10000');
    const stream = await this.sites.logs(actor, id, { tail, follow });
    res.status(200).type('text/plain; charset=utf-8');
    res.on('close', () => stream.destroy());
    // The engine's stream failing mid-follow ends the answer; it never reaches the process.
    stream.on('error', () => res.end());
    stream.pipe(res);
  }

  @Get('jobs/:id')
  @ApiOkResponse({ type: JobView })
  job(@Actor() actor: Principal, @Param('id') id: string) {
    return this.jobs.get(actor, id);
  }

  @Post('jobs/:id/cancel')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobView })
  cancel(@Actor() actor: Principal, @Param('id') id: string) {
    return this.jobs.cancel(actor, id);
  }
}
