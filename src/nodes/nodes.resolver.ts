import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Actor, type Principal } from '../common/principal';
import { FROM_BACKUPS, NodeEvacuationView, NodeView } from './dto/node.dto';
import { NodesService } from './nodes.service';

@Resolver(() => NodeView)
export class NodesResolver {
  constructor(private readonly service: NodesService) {}

  @Query(() => [NodeView], { description: "The cluster's nodes (BERTH_ENGINE=swarm; admin keys only)" })
  nodes(@Actor() actor: Principal) {
    return this.service.list(actor);
  }

  @Query(() => NodeView, { description: 'One node of the cluster (BERTH_ENGINE=swarm; admin keys only)' })
  node(@Actor() actor: Principal, @Args('id', { type: () => ID, description: "Swarm's node ID" }) id: string) {
    return this.service.get(actor, id);
  }

  @Mutation(() => NodeView, { description: 'The node takes no new tenant; its tenants stay (admin keys only)' })
  cordonNode(@Actor() actor: Principal, @Args('id', { type: () => ID, description: "Swarm's node ID" }) id: string) {
    return this.service.setCordoned(actor, id, true);
  }

  @Mutation(() => NodeView, { description: 'The node takes new tenants again, if it is ready and active (admin keys only)' })
  uncordonNode(@Actor() actor: Principal, @Args('id', { type: () => ID, description: "Swarm's node ID" }) id: string) {
    return this.service.setCordoned(actor, id, false);
  }

  @Mutation(() => NodeEvacuationView, {
    description:
      'Cordons the node and moves each of its tenants to another node through backup and restore, as MOVE_TENANT jobs (admin keys only)',
  })
  evacuateNode(
    @Actor() actor: Principal,
    @Args('id', { type: () => ID, description: "Swarm's node ID" }) id: string,
    @Args('fromBackups', { nullable: true, defaultValue: false, description: FROM_BACKUPS }) fromBackups: boolean,
  ) {
    return this.service.evacuate(actor, id, fromBackups);
  }
}
