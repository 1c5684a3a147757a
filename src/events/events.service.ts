import { Injectable, Logger } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import type { Prisma } from '../generated/prisma/client';
import { NotifyQueue } from './notify.queue';

export interface NewEvent {
  tenantId?: string | null;
  siteId?: string | null;
  type: string;
  message: string;
  data?: Prisma.InputJsonValue;
  actorKeyId?: string | null;
}

type Tx = Pick<PrismaService, 'event'>;

/**
 * The audit trail and the source of notifications: every state change is one row, and
 * each row is handed to the notification dispatcher (emails, webhooks, live streams).
 */
@Injectable()
export class EventsService {
  private readonly logger = new Logger('Events');

  constructor(
    private readonly prisma: PrismaService,
    private readonly notify: NotifyQueue,
  ) {}

  /**
   * Inside a transaction the dispatch is delayed a little and retried until the row is
   * committed; should the enqueue itself be lost, the dispatcher's sweeper finds the row.
   */
  async record(event: NewEvent, tx?: Tx) {
    const row = await (tx ?? this.prisma).event.create({ data: { ...event, data: event.data ?? {} } });
    this.notify.dispatch(row.id, tx ? 100 : 0).catch((e: Error) => this.logger.warn(`dispatch of event ${row.id} deferred: ${e.message}`));
    return row;
  }

  async list(where: { tenantId?: string; siteId?: string; type?: string }, page: { limit: number; before?: Date }) {
    return this.prisma.event.findMany({
      where: { ...where, ...(page.before ? { createdAt: { lt: page.before } } : {}) },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: page.limit,
    });
  }
}
