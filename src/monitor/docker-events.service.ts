import { Inject, Injectable, Logger } from '@nestjs/common';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { Health } from '../generated/prisma/enums';
import { DockerService } from '../docker/docker.service';
import { LABEL, MANAGED_BY } from '../docker/plan.types';
import { EventsService } from '../events/events.service';
import { RedisService } from '../redis/redis.service';
import { MonitorService } from './monitor.service';
import { SiteHealthService } from './site-health.service';
import { ReconcilerService } from '../reconcile/reconciler.service';

interface EngineEvent {
  Type: string;
  Action: string;
  id: string;
  time: number;
  timeNano: number;
  Actor: { ID: string; Attributes: Record<string, string> };
}

/**
 * Follows the Docker Engine's event stream for Berth's WordPress containers, so a crash is
 * noticed at once rather than at the next probe. Reconnects by itself, resuming with `since`.
 */
@Injectable()
export class DockerEventsService {
  private readonly logger = new Logger('DockerEvents');
  private stream?: Readable;
  private stopped = true;
  private since = Math.floor(Date.now() / 1000);

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly docker: DockerService,
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly events: EventsService,
    private readonly monitor: MonitorService,
    private readonly health: SiteHealthService,
    private readonly reconciler: ReconcilerService,
  ) {}

  start(): void {
    // A Swarm manager's stream holds only its own node's containers: NodeWatchService and the
    // probes watch a cluster instead.
    if (this.config.BERTH_ENGINE === 'swarm') return;
    this.stopped = false;
    void this.follow();
  }

  stop(): void {
    this.stopped = true;
    this.stream?.destroy();
  }

  private async follow(): Promise<void> {
    while (!this.stopped) {
      try {
        const stream = await this.docker.events({
          since: this.since,
          filters: {
            type: ['container', 'network'],
            event: ['die', 'oom', 'kill', 'start', 'restart', 'health_status', 'stop', 'destroy'],
            label: [`${LABEL.managedBy}=${MANAGED_BY}`, `${LABEL.instance}=${this.config.BERTH_INSTANCE}`],
          },
        });
        this.stream = stream;
        if (this.stopped) break; // stopped while connecting: `finally` closes it
        for await (const line of createInterface({ input: stream })) {
          if (!line.trim()) continue;
          const event = JSON.parse(line) as EngineEvent;
          this.since = Math.max(this.since, event.time);
          await this.handle(event).catch((e: Error) => this.logger.warn(`event ${event.Action}: ${e.message}`));
        }
      } catch (e) {
        if (!this.stopped) this.logger.warn(`event stream lost: ${(e as Error).message}; reconnecting`);
      } finally {
        this.stream?.destroy();
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  private async handle(event: EngineEvent): Promise<void> {
    const action = event.Action.split(':')[0];
    // Anything removed or stopped behind Berth's back is the reconciler's business.
    if (event.Type === 'network' || action === 'destroy' || action === 'stop' || event.Actor.Attributes[LABEL.role] !== 'wordpress') {
      if (action === 'destroy' || action === 'die' || action === 'stop') this.reconciler.soon();
      if (event.Type === 'network' || event.Actor.Attributes[LABEL.role] !== 'wordpress') return;
    }
    const siteId = event.Actor.Attributes[LABEL.siteId];
    if (!siteId) return;
    // Every worker follows the stream; the first to claim an event handles it.
    const claimed = await this.redis.client.set(`berth:docker-event:${event.id}:${event.timeNano}:${event.Action}`, '1', 'EX', 600, 'NX');
    if (claimed !== 'OK') return;
    if (action === 'die' || action === 'oom' || action === 'kill') {
      await this.monitor.watch(siteId);
      const info = await this.docker.inspectContainer(event.id);
      // A container Docker is restarting (restart policy) is not down; one that stays dead is.
      if (info && !info.State.Running && !info.State.Restarting && action === 'die') {
        const code = event.Actor.Attributes.exitCode ?? String(info.State.ExitCode);
        await this.health.transition(
          siteId,
          Health.DOWN,
          `container ${info.Name.replace(/^\//, '')} died (exit code ${code}${info.State.OOMKilled ? ', out of memory' : ''})`,
        );
      }
    } else if (action === 'start' || action === 'restart') {
      await this.monitor.watch(siteId, Date.now() + 500);
      const info = await this.docker.inspectContainer(event.id);
      const site = await this.prisma.site.findUnique({ where: { id: siteId }, select: { tenantId: true, name: true, restartCount: true } });
      if (info && site && info.RestartCount > site.restartCount) {
        await this.prisma.site.update({ where: { id: siteId }, data: { restartCount: info.RestartCount } });
        await this.events.record({
          tenantId: site.tenantId,
          siteId,
          type: 'site.restarted',
          message: `Docker restarted site ${site.name}'s container (restart ${info.RestartCount})`,
          data: { restartCount: info.RestartCount },
        });
      }
    } else if (action === 'health_status') {
      await this.monitor.watch(siteId);
    }
  }
}
