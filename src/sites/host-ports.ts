import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import type { Site } from '../generated/prisma/client';

/**
 * Each site's host port, reserved once from BERTH_PORT_RANGE so its URL survives restarts
 * and replacements. The unique index settles races between workers.
 */
@Injectable()
export class HostPorts {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
  ) {}

  async reserve(site: Pick<Site, 'id' | 'hostPort'>): Promise<number> {
    if (site.hostPort) return site.hostPort;
    const [lo, hi] = this.config.BERTH_PORT_RANGE;
    for (let i = 0; i < 50; i++) {
      const port = lo + Math.floor(Math.random() * (hi - lo + 1));
      await this.prisma.site.updateMany({ where: { id: site.id, hostPort: null }, data: { hostPort: port } }).catch(() => undefined);
      const now = await this.prisma.site.findUniqueOrThrow({ where: { id: site.id }, select: { hostPort: true } });
      if (now.hostPort) return now.hostPort;
    }
    throw new Error(`no free host port found in ${lo}-${hi}`);
  }

  /** Gives up a port something else on the host holds, so the next attempt takes another. */
  async release(siteId: string): Promise<void> {
    await this.prisma.site.update({ where: { id: siteId }, data: { hostPort: null } });
  }
}
