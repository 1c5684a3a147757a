import { Inject, Injectable, Logger } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { DockerService } from '../docker/docker.service';
import { DesiredState, Health, SiteStatus } from '../generated/prisma/enums';
import { SiteHealthService } from './site-health.service';

/**
 * On a Swarm (BERTH_ENGINE=swarm), the nodes as the manager sees them: when one is `down`
 * or `disconnected` on two looks in a row (Swarm marks a node whose engine stopped answering
 * `down` about 10 s later), every running site of its tenants turns DOWN, saying why, and its owner is told as for
 * any outage. A container's events come only from its own node's engine, so the cluster is
 * watched through the manager instead: one `GET /nodes` every BERTH_NODE_WATCH_MS, whatever
 * the number of sites. Sites come back UP through their probes (through the edge) once the
 * node is back and Swarm has started their tasks again: no step of Berth's is needed.
 */
const OUT: readonly string[] = ['down', 'disconnected'];

@Injectable()
export class NodeWatchService {
  private readonly logger = new Logger('NodeWatch');
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private readonly seen = new Map<string, string>();

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly docker: DockerService,
    private readonly prisma: PrismaService,
    private readonly health: SiteHealthService,
  ) {}

  start(): void {
    if (this.config.BERTH_ENGINE !== 'swarm') return;
    this.timer = setInterval(() => void this.tick(), this.config.BERTH_NODE_WATCH_MS);
    this.timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One look at the nodes; a look still running when the next is due is not doubled. */
  tick(): Promise<void> {
    this.running ??= this.look()
      .catch((e: Error) => this.logger.warn(`nodes could not be read: ${e.message}`))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async look(): Promise<void> {
    for (const node of await this.docker.listNodes()) {
      const state = node.Status.State;
      const name = node.Description.Hostname;
      const before = this.seen.get(node.ID);
      if (before !== state) {
        if (before) this.logger.warn(`node ${name} is ${state}`);
        this.seen.set(node.ID, state);
      }
      // `unknown` is what every node is while a new leader waits for its heartbeats: not an
      // outage. A node is down once two looks in a row have found it down (or disconnected).
      if (!OUT.includes(state) || before !== state) continue;
      const sites = await this.prisma.site.findMany({
        where: {
          tenant: { nodeId: node.ID },
          desiredState: DesiredState.RUNNING,
          status: SiteStatus.RUNNING,
          health: { not: Health.DOWN },
        },
        select: { id: true },
      });
      const why = `its node ${name} is ${state}${node.Status.Message ? ` (${node.Status.Message})` : ''}`;
      for (const s of sites) await this.health.transition(s.id, Health.DOWN, why);
    }
  }
}
