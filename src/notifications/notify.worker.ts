import { Inject, Injectable, Logger } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { DeliveryStatus, EmailStatus } from '../generated/prisma/enums';
import { SecretBox } from '../common/crypto';
import { RedisService } from '../redis/redis.service';
import { EventsService } from '../events/events.service';
import { MailerService } from './mailer.service';
import { siteMail } from './mail-template';
import { NotifyQueue } from '../events/notify.queue';
import { eventChannel, NOTIFY_QUEUE, NotifyJob, type NotifyPayload, type NotifyPayloads } from '../events/notify.types';
import { sign, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './webhook-signature';
import { postWebhook, REFUSED, WebhookTargetPolicy } from './webhook-target';

/** Events that are emailed to the tenant's contact address. */
export const EMAILED_EVENTS = new Set(['site.down', 'site.up', 'backup.failed']);

type Handler<N extends NotifyJob> = (data: NotifyPayloads[N], job: Job) => Promise<void>;

/** Hands each event to live streams, email and webhooks, with retries; nothing is dropped. */
@Injectable()
export class NotifyWorker {
  private readonly logger = new Logger('Notify');
  private worker?: Worker<NotifyPayload, void, NotifyJob>;
  private sweeper?: NodeJS.Timeout;
  private readonly handlers: { [N in NotifyJob]: Handler<N> } = {
    [NotifyJob.Dispatch]: (d) => this.dispatch(d.eventId),
    [NotifyJob.Email]: (d, job) => this.email(d.notificationId, job),
    [NotifyJob.Webhook]: (d, job) => this.webhook(d.deliveryId, job),
  };

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly queue: NotifyQueue,
    private readonly mailer: MailerService,
    private readonly events: EventsService,
    private readonly box: SecretBox,
    private readonly targets: WebhookTargetPolicy,
    private readonly metrics: MetricsService,
  ) {}

  start(): void {
    this.worker = new Worker<NotifyPayload, void, NotifyJob>(
      NOTIFY_QUEUE,
      (job) => (this.handlers[job.name] as Handler<NotifyJob>)(job.data as never, job),
      { connection: this.redis.connect({ maxRetriesPerRequest: null }), concurrency: 20 },
    );
    this.worker.on('error', (e) => this.logger.error(`worker: ${e.message}`));
    this.sweeper = setInterval(() => void this.sweep().catch((e: Error) => this.logger.warn(`sweep: ${e.message}`)), 15_000);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    await this.worker?.close();
  }

  /** Events whose dispatch was lost (crash, Redis down) are dispatched again. */
  async sweep(): Promise<void> {
    const stale = await this.prisma.event.findMany({
      where: { dispatchedAt: null, createdAt: { lt: new Date(Date.now() - 10_000) } },
      select: { id: true },
      take: 1000,
    });
    for (const e of stale) await this.queue.dispatch(e.id);
  }

  private async dispatch(eventId: string): Promise<void> {
    const event = await this.prisma.event.findUnique({ where: { id: eventId } });
    if (!event) throw new Error(`event ${eventId} is not visible yet`);
    if (event.dispatchedAt) return;
    const live = { id: event.id, tenantId: event.tenantId, siteId: event.siteId };
    await this.redis.publish(eventChannel.all, live);
    if (event.tenantId) await this.redis.publish(eventChannel.tenant(event.tenantId), live);

    if (event.tenantId) {
      const tenant = await this.prisma.tenant.findUnique({ where: { id: event.tenantId } });
      const flapping = (event.data as { flapping?: boolean } | null)?.flapping === true;
      if (tenant && EMAILED_EVENTS.has(event.type) && !flapping) {
        const mail = siteMail(event, tenant.name);
        const n = await this.prisma.emailNotification.upsert({
          where: { eventId: event.id },
          create: { tenantId: tenant.id, eventId: event.id, recipient: tenant.contactEmail, subject: mail.subject, body: mail.text },
          update: {},
        });
        await this.queue.add(NotifyJob.Email, { notificationId: n.id }, `email-${n.id}`);
      }
      const hooks = await this.prisma.webhook.findMany({ where: { tenantId: event.tenantId, active: true } });
      for (const hook of hooks.filter((h) => h.events.length === 0 || h.events.includes(event.type))) {
        const d = await this.prisma.webhookDelivery.upsert({
          where: { webhookId_eventId: { webhookId: hook.id, eventId: event.id } },
          create: { webhookId: hook.id, eventId: event.id, eventType: event.type },
          update: {},
        });
        await this.queue.add(NotifyJob.Webhook, { deliveryId: d.id }, `wh-${d.id}`);
      }
    }
    await this.prisma.event.update({ where: { id: event.id }, data: { dispatchedAt: new Date() } });
  }

  private isFinal(job: Job): boolean {
    return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  }

  private async email(id: string, job: Job): Promise<void> {
    const n = await this.prisma.emailNotification.findUnique({ where: { id } });
    if (!n || n.status === EmailStatus.SENT || n.status === EmailStatus.RECORDED) return;
    if (!this.mailer.configured) {
      await this.prisma.emailNotification.update({ where: { id }, data: { status: EmailStatus.RECORDED } });
      this.metrics.deliveries.inc({ channel: 'email', result: 'recorded' });
      await this.events.record({
        tenantId: n.tenantId,
        type: 'email.recorded',
        message: `No SMTP server configured; email to ${n.recipient} recorded: ${n.subject}`,
        // A sensitive body (a set-password link) stays in its row, for the operator only.
        data: { notificationId: id, to: n.recipient, subject: n.subject, ...(n.sensitive ? {} : { body: n.body }) },
      });
      return;
    }
    try {
      await this.mailer.send({ to: n.recipient, subject: n.subject, text: n.body });
      this.metrics.deliveries.inc({ channel: 'email', result: 'delivered' });
      await this.prisma.emailNotification.update({
        where: { id },
        data: {
          status: EmailStatus.SENT,
          attempts: { increment: 1 },
          sentAt: new Date(),
          error: null,
          ...(n.sensitive ? { body: '(not kept: it held a set-password link)' } : {}),
        },
      });
    } catch (e) {
      const error = (e as Error).message.slice(0, 1000);
      const final = this.isFinal(job);
      this.metrics.deliveries.inc({ channel: 'email', result: 'failed' });
      await this.prisma.emailNotification.update({
        where: { id },
        data: { attempts: { increment: 1 }, error, ...(final ? { status: EmailStatus.FAILED } : {}) },
      });
      if (final)
        await this.events.record({
          tenantId: n.tenantId,
          type: 'email.failed',
          message: `Email to ${n.recipient} could not be delivered: ${error}`,
          data: { notificationId: id },
        });
      throw e;
    }
  }

  private async webhook(id: string, job: Job): Promise<void> {
    const d = await this.prisma.webhookDelivery.findUnique({ where: { id }, include: { webhook: true } });
    if (!d || d.status === DeliveryStatus.SUCCEEDED) return;
    if (!d.webhook.active) {
      // Deactivated while this delivery waited: it ends, saying why, rather than stay PENDING.
      const error = 'the webhook was deactivated before this delivery was made';
      await this.prisma.webhookDelivery.update({ where: { id }, data: { status: DeliveryStatus.FAILED, error } });
      this.metrics.deliveries.inc({ channel: 'webhook', result: 'failed' });
      throw new UnrecoverableError(error);
    }
    const event = await this.prisma.event.findUniqueOrThrow({ where: { id: d.eventId } });
    const body = JSON.stringify({
      id: event.id,
      type: event.type,
      message: event.message,
      tenantId: event.tenantId,
      siteId: event.siteId,
      data: event.data,
      createdAt: event.createdAt,
    });
    const timestamp = Math.floor(Date.now() / 1000);
    let status: number | null = null;
    let error: string | null = null;
    let refused = false;
    try {
      status = await postWebhook(
        this.targets,
        d.webhook.url,
        {
          'content-type': 'application/json',
          'user-agent': 'Berth-Webhooks/1',
          'berth-event': event.type,
          'berth-delivery': d.id,
          [TIMESTAMP_HEADER]: String(timestamp),
          [SIGNATURE_HEADER]: sign(this.box.open(d.webhook.secretEnc), timestamp, body),
        },
        body,
        this.config.BERTH_WEBHOOK_TIMEOUT_MS,
      );
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (e) {
      error = `${(e as Error).message}`.slice(0, 1000);
      // A destination the policy refuses stays refused: no retries.
      refused = (e as NodeJS.ErrnoException).code === REFUSED;
      const address = (e as { address?: string }).address;
      if (refused)
        this.logger.warn(`webhook ${d.webhook.id} of tenant ${d.webhook.tenantId} refused: ${error}${address ? ` (${address})` : ''}`);
    }
    const final = error !== null && (refused || this.isFinal(job));
    this.metrics.deliveries.inc({ channel: 'webhook', result: error === null ? 'delivered' : refused ? 'refused' : 'failed' });
    await this.prisma.webhookDelivery.update({
      where: { id },
      data: {
        attempts: { increment: 1 },
        lastAttemptAt: new Date(),
        responseStatus: status,
        error,
        ...(error === null
          ? { status: DeliveryStatus.SUCCEEDED, deliveredAt: new Date() }
          : final
            ? { status: DeliveryStatus.FAILED }
            : {}),
      },
    });
    if (refused) throw new UnrecoverableError(`webhook ${d.webhook.url}: ${error}`);
    if (error !== null) throw new Error(`webhook ${d.webhook.url}: ${error}`);
  }
}
