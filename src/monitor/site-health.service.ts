import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { DesiredState, Health, JobKind, JobStatus, SiteStatus } from '../generated/prisma/enums';
import { EventsService } from '../events/events.service';
import { RedisService } from '../redis/redis.service';
import { siteUrl } from '../common/site-url';
import { siteChannel } from '../sites/site-urls';
import { healthEvent } from './health';

const FLAP_WINDOW_MS = 10 * 60_000;

/** Records changes of a site's health exactly once, however many workers observe them. */
@Injectable()
export class SiteHealthService {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    private readonly redis: RedisService,
  ) {}

  /**
   * Moves the site to `to` if it is not there already and is meant to be running; the row
   * lock makes concurrent observers agree on one transition and one event.
   */
  async transition(siteId: string, to: Health, reason: string): Promise<boolean> {
    const changed = await this.prisma.$transaction(async (tx) => {
      const [site] = await tx.$queryRaw<
        {
          id: string;
          tenantId: string;
          name: string;
          health: Health;
          desiredState: DesiredState;
          status: SiteStatus;
          hostPort: number | null;
        }[]
      >`
        SELECT id, "tenantId", name, health, "desiredState", status, "hostPort" FROM "Site" WHERE id = ${siteId}::uuid FOR UPDATE`;
      if (!site || site.health === to) return undefined;
      if (to !== Health.UNKNOWN && (site.desiredState !== DesiredState.RUNNING || site.status === SiteStatus.DELETED)) return undefined;
      // A job restarting or replacing the container takes it down on purpose: not an outage.
      // A repair is the other way round: it answers an outage, which the owner is told of.
      if (to === Health.DOWN && (await tx.job.count({ where: { siteId, status: JobStatus.RUNNING, kind: { not: JobKind.REPAIR } } })) > 0)
        return undefined;
      await tx.site.update({ where: { id: siteId }, data: { health: to, healthChangedAt: new Date() } });
      return { site, from: site.health };
    });
    if (!changed) return false;
    await this.redis.publish(siteChannel(siteId), { id: siteId }).catch(() => undefined);
    const type = healthEvent(changed.from, to);
    if (type) {
      const { site } = changed;
      const recent = await this.prisma.event.count({
        where: { siteId, type: { in: ['site.down', 'site.up'] }, createdAt: { gt: new Date(Date.now() - FLAP_WINDOW_MS) } },
      });
      const flapping = recent + 1 >= this.config.BERTH_FLAP_LIMIT;
      await this.events.record({
        tenantId: site.tenantId,
        siteId,
        type,
        message: `Site ${site.name} is ${to === Health.DOWN ? 'down' : 'up again'}: ${reason}${flapping ? ' (flapping: notifications paused)' : ''}`,
        data: {
          siteName: site.name,
          url: siteUrl(this.config.BERTH_PUBLISH_ADDRESS, site.hostPort),
          reason,
          previous: changed.from,
          flapping,
        },
      });
    }
    return true;
  }
}
