import { Controller, Get, HttpCode, Query } from '@nestjs/common';
import { ApiOkResponse, ApiQuery, ApiTags } from '@nestjs/swagger';
import { BerthError, ErrorCode } from '../common/errors';
import { Public } from '../common/principal';
import { EdgeService } from './edge.service';
import { Operation } from '../common/api-operation';

/**
 * Caddy's on-demand TLS asks here before it gets a certificate for a hostname: yes (200)
 * only for hostnames Berth routes, so nobody can make the edge request certificates for
 * arbitrary names. Open, as Caddy has no key; it reveals only what DNS already does.
 */
@ApiTags('edge')
@Controller('v1/edge')
export class EdgeController {
  constructor(private readonly edge: EdgeService) {}

  @Get('ask')
  @Public()
  @HttpCode(200)
  @ApiQuery({ name: 'domain', description: 'The hostname the edge was asked for' })
  @ApiOkResponse({ description: 'Berth routes this hostname' })
  @Operation('askEdge', {
    summary: 'Ask whether Berth routes a hostname',
    description: "For Caddy's on-demand TLS: 200 only for hostnames Berth routes. Open (Caddy has no key).",
    errors: [ErrorCode.NOT_FOUND],
  })
  async ask(@Query('domain') domain?: string): Promise<{ domain: string; routed: true }> {
    if (typeof domain !== 'string' || domain.length === 0 || domain.length > 253)
      throw new BerthError(ErrorCode.VALIDATION_FAILED, 'domain must be a hostname');
    if (!(await this.edge.isRouted(domain))) throw new BerthError(ErrorCode.NOT_FOUND, `Berth routes no site at ${domain}`);
    return { domain, routed: true };
  }
}
