import { Args, ID, Mutation, Parent, ResolveField, Resolver } from '@nestjs/graphql';
import { Actor, type Principal } from '../common/principal';
import { SiteView } from '../sites/dto/site.dto';
import { DomainsService } from './domains.service';
import { AddDomainInput, DomainView } from './dto/domain.dto';

@Resolver(() => SiteView)
export class DomainsResolver {
  constructor(private readonly domains: DomainsService) {}

  @Mutation(() => DomainView, {
    description: 'Adds a custom domain (and, with www, its www. variant) to a site; the edge routes it once it is ACTIVE',
  })
  addDomain(
    @Actor() actor: Principal,
    @Args('siteId', { type: () => ID, description: 'The site' }) siteId: string,
    @Args('input', { description: 'The domain' }) input: AddDomainInput,
  ) {
    return this.domains.add(actor, siteId, input);
  }

  @Mutation(() => DomainView, { description: 'Removes a domain from a site; answers the domain as it was' })
  removeDomain(
    @Actor() actor: Principal,
    @Args('siteId', { type: () => ID, description: 'The site' }) siteId: string,
    @Args('hostname', { description: "The domain's hostname" }) hostname: string,
  ) {
    return this.domains.remove(actor, siteId, hostname);
  }

  @Mutation(() => DomainView, { description: "Checks a pending domain's TXT record now" })
  verifyDomain(
    @Actor() actor: Principal,
    @Args('siteId', { type: () => ID, description: 'The site' }) siteId: string,
    @Args('hostname', { description: "The domain's hostname" }) hostname: string,
  ) {
    return this.domains.verify(actor, siteId, hostname);
  }

  @ResolveField('domains', () => [DomainView], { description: 'Custom domains, the primary first' })
  siteDomains(@Actor() actor: Principal, @Parent() site: SiteView) {
    return this.domains.list(actor, site.id);
  }
}
