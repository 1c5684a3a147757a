import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import type { Event } from '../generated/prisma/client';
import { BerthError, ErrorCode } from '../common/errors';
import { canSeeTenant, tenantScope, type Principal } from '../common/principal';
import { RedisService } from '../redis/redis.service';
import { isUuid } from '../common/ids';
import { eventChannel } from './notify.types';
import { EventsService } from './events.service';

export interface EventFilter {
  siteId?: string;
  type?: string;
  limit: number;
  before?: Date;
}

/** Reading events, past and live, always within the caller's tenant. */
@Injectable()
export class EventFeedService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    private readonly redis: RedisService,
  ) {}

  private async assertSiteVisible(actor: Principal, siteId: string): Promise<void> {
    const site = isUuid(siteId) ? await this.prisma.site.findUnique({ where: { id: siteId }, select: { tenantId: true } }) : null;
    if (!site || !canSeeTenant(actor, site.tenantId)) throw new BerthError(ErrorCode.SITE_NOT_FOUND, `Site ${siteId} was not found`);
  }

  async list(actor: Principal, filter: EventFilter): Promise<Event[]> {
    if (filter.siteId) await this.assertSiteVisible(actor, filter.siteId);
    return this.events.list({ tenantId: tenantScope(actor), siteId: filter.siteId, type: filter.type }, filter);
  }

  /**
   * New events as they are dispatched. The iterator's return() closes the Redis
   * subscription at once, even while it waits for the next message.
   */
  async live(actor: Principal, siteId?: string): Promise<AsyncIterableIterator<Event>> {
    if (siteId) await this.assertSiteVisible(actor, siteId);
    const scope = tenantScope(actor);
    const messages = await this.redis.subscribe<{ id: string; siteId: string | null }>(
      scope ? eventChannel.tenant(scope) : eventChannel.all,
    );
    const iterator: AsyncIterableIterator<Event> = {
      [Symbol.asyncIterator]: () => iterator,
      next: async () => {
        for (;;) {
          const m = await messages.next();
          if (m.done) return { value: undefined, done: true };
          if (siteId && m.value.siteId !== siteId) continue;
          const event = await this.prisma.event.findUnique({ where: { id: m.value.id } });
          if (event && (!scope || event.tenantId === scope)) return { value: event, done: false };
        }
      },
      return: async () => {
        await messages.return?.();
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }
}
