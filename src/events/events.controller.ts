import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Actor, type Principal } from '../common/principal';
import { Operation } from '../common/api-operation';
import { ErrorCode } from '../common/errors';

import { EventFilterArgs, EventView } from './dto/event.dto';
import { RevocationsService } from '../revocations/revocations.service';
import { EventFeedService } from './event-feed.service';

@ApiTags('events')
@Controller('v1/events')
export class EventsController {
  constructor(
    private readonly feed: EventFeedService,
    private readonly revocations: RevocationsService,
  ) {}

  @Get()
  @ApiOkResponse({ type: [EventView] })
  @Operation('listEvents', {
    summary: 'List events',
    description: "The caller's tenant's events (site up/down, jobs, domains, backups), newest first.",
    errors: [ErrorCode.SITE_NOT_FOUND],
  })
  list(@Actor() actor: Principal, @Query() filter: EventFilterArgs) {
    return this.feed.list(actor, filter);
  }

  /** Server-sent events: each new event of the caller's tenant (optionally one site). */
  @Get('stream')
  @ApiProduces('text/event-stream')
  @ApiOkResponse({
    description: 'text/event-stream: one `event: <type>` with the event as JSON data per event; comments keep the connection alive',
  })
  @Operation('streamEvents', {
    summary: 'Follow events',
    description:
      "Server-sent events: each new event of the caller's tenant (or of one site, ?siteId=) as it happens, until the client leaves.",
    errors: [ErrorCode.SITE_NOT_FOUND],
  })
  async stream(@Actor() actor: Principal, @Query() filter: EventFilterArgs, @Req() req: Request, @Res() res: Response) {
    // Access is checked before any byte is sent, so refusals are still problem+json.
    const events = await this.feed.live(actor, filter.siteId);
    // The client left while access was checked: its 'close' has been and gone.
    if (req.socket.destroyed) {
      void events.return?.();
      return;
    }
    res
      .status(200)
      .set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    res.write(': connected\n\n');
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    const leave = () => void events.return?.();
    req.on('close', leave);
    // The key's revocation ends the stream, as the client's leaving does.
    const untie = this.revocations.holdOpen(actor.keyId, leave);
    try {
      for await (const e of events) res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    } finally {
      untie();
      clearInterval(heartbeat);
      res.end();
    }
  }
}
