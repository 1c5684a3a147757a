import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Actor, type Principal } from '../common/principal';
import { CreateWebhookInput, UpdateWebhookInput, WebhookDeliveriesArgs, WebhookDeliveryView, WebhookView } from './dto/webhook.dto';
import { WebhooksService } from './webhooks.service';

@Resolver(() => WebhookView)
export class WebhooksResolver {
  constructor(private readonly service: WebhooksService) {}

  @Mutation(() => WebhookView)
  createWebhook(@Actor() actor: Principal, @Args('input') input: CreateWebhookInput) {
    return this.service.create(actor, input);
  }

  @Query(() => [WebhookView])
  webhooks(@Actor() actor: Principal) {
    return this.service.list(actor);
  }

  @Query(() => WebhookView)
  webhook(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return this.service.get(actor, id);
  }

  @Mutation(() => WebhookView)
  updateWebhook(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string, @Args('input') input: UpdateWebhookInput) {
    return this.service.update(actor, id, input);
  }

  @Mutation(() => WebhookView)
  deleteWebhook(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return this.service.remove(actor, id);
  }

  @Query(() => [WebhookDeliveryView])
  webhookDeliveries(@Actor() actor: Principal, @Args() args: WebhookDeliveriesArgs) {
    return this.service.deliveries(actor, args.id, args);
  }
}
