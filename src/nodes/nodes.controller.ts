import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Actor, type Principal } from '../common/principal';
import { EvacuateNodeArgs, NodeEvacuationView, NodeView } from './dto/node.dto';
import { NodesService } from './nodes.service';
import { Operation } from '../common/api-operation';
import { ErrorCode } from '../common/errors';

/** The cluster's nodes (BERTH_ENGINE=swarm; admin keys only). */
@ApiTags('nodes')
@Controller('v1/nodes')
export class NodesController {
  constructor(private readonly nodes: NodesService) {}

  @Get()
  @ApiOkResponse({ type: [NodeView] })
  @Operation('listNodes', {
    summary: "List the cluster's nodes",
    description: 'Admin keys only; BERTH_ENGINE=swarm.',
    errors: [ErrorCode.NOT_A_CLUSTER, ErrorCode.UNAVAILABLE],
  })
  list(@Actor() actor: Principal) {
    return this.nodes.list(actor);
  }

  @Get(':id')
  @ApiOkResponse({ type: NodeView })
  @Operation('getNode', {
    summary: 'Get a node',
    description: 'Admin keys only.',
    errors: [ErrorCode.NOT_A_CLUSTER, ErrorCode.NODE_NOT_FOUND, ErrorCode.UNAVAILABLE],
  })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.nodes.get(actor, id);
  }

  @Post(':id/cordon')
  @HttpCode(200)
  @ApiOkResponse({ type: NodeView, description: 'The node takes no new tenant; its tenants stay' })
  @Operation('cordonNode', {
    summary: 'Cordon a node',
    description: 'Admin keys only. The node takes no new tenant; its tenants stay.',
    errors: [ErrorCode.NOT_A_CLUSTER, ErrorCode.NODE_NOT_FOUND, ErrorCode.UNAVAILABLE],
  })
  cordon(@Actor() actor: Principal, @Param('id') id: string) {
    return this.nodes.setCordoned(actor, id, true);
  }

  @Post(':id/uncordon')
  @HttpCode(200)
  @ApiOkResponse({ type: NodeView })
  @Operation('uncordonNode', {
    summary: 'Uncordon a node',
    description: 'Admin keys only.',
    errors: [ErrorCode.NOT_A_CLUSTER, ErrorCode.NODE_NOT_FOUND, ErrorCode.UNAVAILABLE],
  })
  uncordon(@Actor() actor: Principal, @Param('id') id: string) {
    return this.nodes.setCordoned(actor, id, false);
  }

  @Post(':id/evacuate')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: NodeEvacuationView, description: 'The node is cordoned; each of its tenants moves in a MOVE_TENANT job' })
  @Operation('evacuateNode', {
    summary: 'Evacuate a node',
    description:
      'Admin keys only. Cordons the node and moves each of its tenants to the node with the most room, through a backup ' +
      'and a restore (a MOVE_TENANT job each; its sites are RESTORING meanwhile, and keep their domains). A move that fails ' +
      "puts its tenant back on this node. The node must be ready; a node that is down is evacuated from its tenants' " +
      'latest backups with fromBackups=true (and only then: NODE_READY otherwise).',
    errors: [ErrorCode.NOT_A_CLUSTER, ErrorCode.NODE_NOT_FOUND, ErrorCode.NODE_NOT_READY, ErrorCode.NODE_READY, ErrorCode.UNAVAILABLE],
  })
  evacuate(@Actor() actor: Principal, @Param('id') id: string, @Query() args: EvacuateNodeArgs) {
    return this.nodes.evacuate(actor, id, args.fromBackups ?? false);
  }
}
