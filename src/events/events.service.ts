import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import type { Prisma } from '../generated/prisma/client';

export interface NewEvent {
  tenantId?: string | null;
  siteId?: string | null;
  type: string;
  message: string;
  data?: Prisma.InputJsonValue;
  actorKeyId?: string | null;
}

type Tx = Pick<PrismaService, 'event'>;

/** The audit trail and the source of notifications: every state change is one row. */
@Injectable()
export class EventsService {
  constructor(private readonly prisma: PrismaService) {}

  async record(event: NewEvent, tx: Tx = this.prisma) {
    return tx.event.create({ data: { ...event, data: event.data ?? {} } });
  }

  async list(where: { tenantId?: string; siteId?: string }, page: { limit: number; before?: Date }) {
    return this.prisma.event.findMany({
      where: { ...where, ...(page.before ? { createdAt: { lt: page.before } } : {}) },
      orderBy: { createdAt: 'desc' },
      take: page.limit,
    });
  }
}
