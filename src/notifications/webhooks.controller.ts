import { Body, Controller, Delete, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Actor, type Principal } from '../common/principal';
import { PageArgs } from '../common/page.dto';
import { CreateWebhookInput, UpdateWebhookInput, WebhookDeliveryView, WebhookView } from './dto/webhook.dto';
import { WebhooksService } from './webhooks.service';

@ApiTags('webhooks')
@ApiBearerAuth()
@Controller('v1/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  @ApiCreatedResponse({ type: WebhookView })
  create(@Actor() actor: Principal, @Body() input: CreateWebhookInput) {
    return this.webhooks.create(actor, input);
  }

  @Get()
  @ApiOkResponse({ type: [WebhookView] })
  list(@Actor() actor: Principal) {
    return this.webhooks.list(actor);
  }

  @Get(':id')
  @ApiOkResponse({ type: WebhookView })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.webhooks.get(actor, id);
  }

  @Patch(':id')
  @ApiOkResponse({ type: WebhookView })
  update(@Actor() actor: Principal, @Param('id') id: string, @Body() input: UpdateWebhookInput) {
    return this.webhooks.update(actor, id, input);
  }

  @Delete(':id')
  @ApiOkResponse({ type: WebhookView })
  remove(@Actor() actor: Principal, @Param('id') id: string) {
    return this.webhooks.remove(actor, id);
  }

  @Get(':id/deliveries')
  @ApiOkResponse({ type: [WebhookDeliveryView] })
  deliveries(@Actor() actor: Principal, @Param('id') id: string, @Query() page: PageArgs) {
    return this.webhooks.deliveries(actor, id, page);
  }
}
