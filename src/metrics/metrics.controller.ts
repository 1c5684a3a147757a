import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Operation } from '../common/api-operation';
import { BerthError, ErrorCode } from '../common/errors';
import { Public } from '../common/principal';
import { forwarded } from './http-metrics';
import { MetricsService } from './metrics.service';

@ApiTags('metrics')
@Controller()
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  /** Not behind an API key: Prometheus shows the metrics token instead (or scrapes from loopback). */
  @Public()
  @Get('metrics')
  @Operation('getMetrics', {
    summary: 'Prometheus metrics',
    description:
      'In the Prometheus text format. Needs `Authorization: Bearer <BERTH_METRICS_TOKEN>`; without that setting, only callers on loopback may read it.',
    errors: [ErrorCode.FORBIDDEN],
  })
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'The metrics, in the Prometheus text exposition format' })
  async scrape(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (!this.metrics.mayRead(req.headers.authorization, req.socket.remoteAddress, forwarded(req.headers)))
      throw new BerthError(ErrorCode.FORBIDDEN, 'Metrics need the metrics token (BERTH_METRICS_TOKEN) or a caller on loopback');
    const body = await this.metrics.registry.metrics();
    res.status(200).type(this.metrics.registry.contentType).send(body);
  }
}
