import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import type { Site } from '../generated/prisma/client';
import { guarded, SupersededError } from '../jobs/generation';
import { RedisService } from '../redis/redis.service';
import { siteChannel } from './site-urls';

export type StatusFields = Partial<
  Pick<
    Site,
    'status' | 'hostPort' | 'lastError' | 'liveName' | 'deletedAt' | 'health' | 'installedAt' | 'adminPasswordSealed' | 'wordpressUrl'
  >
>;

/**
 * The one way jobs and the reconciler write what happened to a site: only while the site's
 * generation is still theirs, so a job that a newer request overtook never writes over it.
 */
@Injectable()
export class SiteStatusWriter {
  constructor(
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
  ) {}

  /** Writes `data` if the site is still at `generation`; else throws {@link SupersededError}. */
  async set(site: Pick<Site, 'id'>, data: StatusFields, generation: number): Promise<void> {
    const done = await this.prisma.site.updateMany(guarded(site.id, { generation, data }));
    if (done.count === 0) throw await this.superseded(site.id, generation);
    await this.redis.publish(siteChannel(site.id), { id: site.id }).catch(() => undefined);
  }

  /** The error for a job at `generation` that the site has moved past; `failure` says what failed, if anything. */
  async superseded(siteId: string, generation: number, failure?: (siteGeneration: number) => string): Promise<SupersededError> {
    const now = await this.prisma.site.findUnique({ where: { id: siteId }, select: { generation: true } });
    const siteGeneration = now?.generation ?? generation + 1;
    return new SupersededError(siteGeneration, generation, failure?.(siteGeneration));
  }
}
