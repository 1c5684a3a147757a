import { Args, ID, Query, Resolver, Subscription } from '@nestjs/graphql';
import { Actor, type Principal } from '../common/principal';

import { EventFilterArgs, EventView } from './dto/event.dto';
import { EventFeedService } from './event-feed.service';

@Resolver(() => EventView)
export class EventsResolver {
  constructor(private readonly feed: EventFeedService) {}

  @Query(() => [EventView], {
    description: "Events, newest first: the caller's tenant's (an admin key: every one); page back with before",
  })
  events(@Actor() actor: Principal, @Args() filter: EventFilterArgs) {
    return this.feed.list(actor, filter);
  }

  @Subscription(() => EventView, { description: "A site's events as they are recorded", resolve: (event: EventView) => event })
  siteEvents(@Actor() actor: Principal, @Args('siteId', { type: () => ID, description: 'The site' }) siteId: string) {
    return this.feed.live(actor, siteId);
  }
}
