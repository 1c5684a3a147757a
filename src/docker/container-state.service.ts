import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { ContainerStateCache } from './container-state';
import { DockerService } from './docker.service';
import { LABEL, MANAGED_BY } from './plan.types';

/** The API's view of Berth's containers: {@link ContainerStateCache} over the Docker Engine. */
@Injectable()
export class ContainerStateService extends ContainerStateCache implements OnModuleDestroy {
  constructor(@Inject(BERTH_CONFIG) config: BerthConfig, docker: DockerService) {
    const logger = new Logger('ContainerState');
    super(
      {
        inspect: (name) => docker.inspectContainer(name),
        events: () =>
          docker.events({
            since: Math.floor(Date.now() / 1000),
            filters: { type: ['container'], label: [`${LABEL.managedBy}=${MANAGED_BY}`, `${LABEL.instance}=${config.BERTH_INSTANCE}`] },
          }),
        names: async () =>
          (await docker.listContainers({ [LABEL.managedBy]: MANAGED_BY, [LABEL.instance]: config.BERTH_INSTANCE })).flatMap((c) =>
            c.Names.map((n) => n.replace(/^\//, '')),
          ),
        warn: (m) => logger.warn(m),
      },
      config.BERTH_CONTAINER_CACHE_MS,
    );
  }

  onModuleDestroy(): void {
    this.stop();
  }
}
