import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import type { Webhook } from '../generated/prisma/client';
import { randomToken, SecretBox } from '../common/crypto';
import { BerthError, ErrorCode } from '../common/errors';
import { assertCanWrite, canSeeTenant, isAdmin, tenantScope, type Principal } from '../common/principal';
import { EventsService } from '../events/events.service';
import { isUuid } from '../common/ids';
import { WebhookTargetPolicy } from './webhook-target';
import type { CreateWebhookInput, UpdateWebhookInput, WebhookDeliveryView, WebhookView } from './dto/webhook.dto';

const view = ({ id, tenantId, url, events, active, description, createdAt }: Webhook): WebhookView => ({
  id,
  tenantId,
  url,
  events,
  active,
  description,
  createdAt,
});

@Injectable()
export class WebhooksService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    private readonly box: SecretBox,
    private readonly targets: WebhookTargetPolicy,
  ) {}

  /** Refuses at once a URL no delivery could be made to (see WebhookTargetPolicy). */
  private checkTarget(url: string | undefined): void {
    const refused = url === undefined ? undefined : this.targets.registrationRefusal(url);
    if (refused) throw new BerthError(ErrorCode.VALIDATION_FAILED, `url: ${refused}`, { field: 'url' });
  }

  async create(actor: Principal, input: CreateWebhookInput): Promise<WebhookView> {
    assertCanWrite(actor);
    this.checkTarget(input.url);
    const tenantId = isAdmin(actor) ? input.tenantId : actor.tenantId;
    if (!tenantId) throw new BerthError(ErrorCode.VALIDATION_FAILED, 'tenantId is required with an admin key');
    // A tenant key naming another tenant is refused like an unknown tenant, never retargeted.
    if (!isAdmin(actor) && input.tenantId && input.tenantId !== actor.tenantId) {
      throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${input.tenantId} was not found`);
    }
    if (!canSeeTenant(actor, tenantId) || !(await this.prisma.tenant.findUnique({ where: { id: tenantId }, select: { id: true } }))) {
      throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${tenantId} was not found`);
    }
    const secret = input.secret ?? `whsec_${randomToken(24)}`;
    const hook = await this.prisma.webhook.create({
      data: { tenantId, url: input.url, secretEnc: this.box.seal(secret), events: input.events ?? [], description: input.description },
    });
    await this.events.record({
      tenantId,
      type: 'webhook.created',
      message: `Webhook ${hook.url} registered`,
      data: { webhookId: hook.id },
      actorKeyId: actor.keyId,
    });
    return { ...view(hook), ...(input.secret ? {} : { secret }) };
  }

  async list(actor: Principal): Promise<WebhookView[]> {
    const scope = tenantScope(actor);
    const rows = await this.prisma.webhook.findMany({ where: scope ? { tenantId: scope } : {}, orderBy: { createdAt: 'asc' } });
    return rows.map(view);
  }

  private async row(actor: Principal, id: string): Promise<Webhook> {
    const hook = isUuid(id) ? await this.prisma.webhook.findUnique({ where: { id } }) : null;
    if (!hook || !canSeeTenant(actor, hook.tenantId)) throw new BerthError(ErrorCode.NOT_FOUND, `Webhook ${id} was not found`);
    return hook;
  }

  async get(actor: Principal, id: string): Promise<WebhookView> {
    return view(await this.row(actor, id));
  }

  async update(actor: Principal, id: string, input: UpdateWebhookInput): Promise<WebhookView> {
    assertCanWrite(actor);
    const hook = await this.row(actor, id);
    this.checkTarget(input.url);
    const updated = await this.prisma.webhook.update({ where: { id }, data: input });
    await this.events.record({
      tenantId: hook.tenantId,
      type: 'webhook.updated',
      message: `Webhook ${updated.url} updated`,
      data: { webhookId: id, fields: Object.keys(input) },
      actorKeyId: actor.keyId,
    });
    return view(updated);
  }

  async remove(actor: Principal, id: string): Promise<WebhookView> {
    assertCanWrite(actor);
    const hook = await this.row(actor, id);
    await this.prisma.webhook.delete({ where: { id } });
    await this.events.record({
      tenantId: hook.tenantId,
      type: 'webhook.deleted',
      message: `Webhook ${hook.url} removed`,
      data: { webhookId: id },
      actorKeyId: actor.keyId,
    });
    return view(hook);
  }

  async deliveries(actor: Principal, id: string, page: { limit: number; offset: number }): Promise<WebhookDeliveryView[]> {
    await this.row(actor, id);
    return this.prisma.webhookDelivery.findMany({
      where: { webhookId: id },
      orderBy: { createdAt: 'desc' },
      take: page.limit,
      skip: page.offset,
    });
  }
}
