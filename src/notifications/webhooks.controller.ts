import { Body, Controller, Delete, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Actor, type Principal } from '../common/principal';
import { PageArgs } from '../common/page.dto';
import { CreateWebhookInput, UpdateWebhookInput, WebhookDeliveryView, WebhookView } from './dto/webhook.dto';
import { WebhooksService } from './webhooks.service';
import { Operation } from '../common/api-operation';
import { ErrorCode } from '../common/errors';

@ApiTags('webhooks')
@Controller('v1/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  @ApiCreatedResponse({ type: WebhookView })
  @Operation('createWebhook', {
    summary: 'Add a webhook',
    description: "Berth POSTs the tenant's events to it, signed with the secret shown once in this answer.",
    errors: [ErrorCode.TENANT_NOT_FOUND],
  })
  create(@Actor() actor: Principal, @Body() input: CreateWebhookInput) {
    return this.webhooks.create(actor, input);
  }

  @Get()
  @ApiOkResponse({ type: [WebhookView] })
  @Operation('listWebhooks', { summary: 'List webhooks' })
  list(@Actor() actor: Principal) {
    return this.webhooks.list(actor);
  }

  @Get(':id')
  @ApiOkResponse({ type: WebhookView })
  @Operation('getWebhook', { summary: 'Get a webhook', errors: [ErrorCode.NOT_FOUND] })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.webhooks.get(actor, id);
  }

  @Patch(':id')
  @ApiOkResponse({ type: WebhookView })
  @Operation('updateWebhook', { summary: 'Change a webhook', errors: [ErrorCode.NOT_FOUND] })
  update(@Actor() actor: Principal, @Param('id') id: string, @Body() input: UpdateWebhookInput) {
    return this.webhooks.update(actor, id, input);
  }

  @Delete(':id')
  @ApiOkResponse({ type: WebhookView })
  @Operation('deleteWebhook', { summary: 'Delete a webhook', errors: [ErrorCode.NOT_FOUND] })
  remove(@Actor() actor: Principal, @Param('id') id: string) {
    return this.webhooks.remove(actor, id);
  }

  @Get(':id/deliveries')
  @ApiOkResponse({ type: [WebhookDeliveryView] })
  @Operation('listWebhookDeliveries', {
    summary: "List a webhook's deliveries",
    description: 'Each attempt with its answer, newest first.',
    errors: [ErrorCode.NOT_FOUND],
  })
  deliveries(@Actor() actor: Principal, @Param('id') id: string, @Query() page: PageArgs) {
    return this.webhooks.deliveries(actor, id, page);
  }
}
