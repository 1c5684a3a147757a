import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Actor, type Principal } from '../common/principal';
import { NodeView } from './dto/node.dto';
import { NodesService } from './nodes.service';

/** The cluster's nodes (BERTH_ENGINE=swarm; admin keys only). */
@ApiTags('nodes')
@ApiBearerAuth()
@Controller('v1/nodes')
export class NodesController {
  constructor(private readonly nodes: NodesService) {}

  @Get()
  @ApiOkResponse({ type: [NodeView] })
  list(@Actor() actor: Principal) {
    return this.nodes.list(actor);
  }

  @Get(':id')
  @ApiOkResponse({ type: NodeView })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.nodes.get(actor, id);
  }

  @Post(':id/cordon')
  @HttpCode(200)
  @ApiOkResponse({ type: NodeView, description: 'The node takes no new tenant; its tenants stay' })
  cordon(@Actor() actor: Principal, @Param('id') id: string) {
    return this.nodes.setCordoned(actor, id, true);
  }

  @Post(':id/uncordon')
  @HttpCode(200)
  @ApiOkResponse({ type: NodeView })
  uncordon(@Actor() actor: Principal, @Param('id') id: string) {
    return this.nodes.setCordoned(actor, id, false);
  }
}
