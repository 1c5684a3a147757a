import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Actor, type Principal } from '../common/principal';
import { CreateWebhookInput, UpdateWebhookInput, WebhookDeliveriesArgs, WebhookDeliveryView, WebhookView } from './dto/webhook.dto';
import { WebhooksService } from './webhooks.service';

@Resolver(() => WebhookView)
export class WebhooksResolver {
  constructor(private readonly service: WebhooksService) {}

  @Mutation(() => WebhookView, {
    description:
      "Adds a webhook: Berth POSTs the tenant's events to it, signed with its secret (shown once in this answer when Berth made it)",
  })
  createWebhook(@Actor() actor: Principal, @Args('input', { description: 'The webhook' }) input: CreateWebhookInput) {
    return this.service.create(actor, input);
  }

  @Query(() => [WebhookView], { description: "The caller's tenant's webhooks (an admin key: every tenant's), oldest first" })
  webhooks(@Actor() actor: Principal) {
    return this.service.list(actor);
  }

  @Query(() => WebhookView, { description: 'One webhook' })
  webhook(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The webhook' }) id: string) {
    return this.service.get(actor, id);
  }

  @Mutation(() => WebhookView, { description: 'Changes a webhook' })
  updateWebhook(
    @Actor() actor: Principal,
    @Args('id', { type: () => ID, description: 'The webhook' }) id: string,
    @Args('input', { description: 'What to change' }) input: UpdateWebhookInput,
  ) {
    return this.service.update(actor, id, input);
  }

  @Mutation(() => WebhookView, { description: 'Deletes a webhook and its deliveries; answers it as it was' })
  deleteWebhook(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The webhook' }) id: string) {
    return this.service.remove(actor, id);
  }

  @Query(() => [WebhookDeliveryView], { description: "A webhook's deliveries, newest first" })
  webhookDeliveries(@Actor() actor: Principal, @Args() args: WebhookDeliveriesArgs) {
    return this.service.deliveries(actor, args.id, args);
  }
}
