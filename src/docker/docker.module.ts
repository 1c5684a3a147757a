import { Module } from '@nestjs/common';
import { ApplyService } from './apply.service';
import { ContainerStateService } from './container-state.service';
import { DockerService } from './docker.service';
import { NodeEngines } from './node-engines';
import { SwarmApplyService } from './swarm-apply.service';

/** The Docker Engine: the adapter, the one apply of a plan, and containers' observed state. */
@Module({
  providers: [DockerService, ApplyService, SwarmApplyService, NodeEngines, ContainerStateService],
  exports: [DockerService, ApplyService, SwarmApplyService, NodeEngines, ContainerStateService],
})
export class DockerModule {}
