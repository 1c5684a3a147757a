import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';

import { Actor, type Principal } from '../common/principal';
import { ApiKeysService } from '../auth/api-keys.service';
import { PageArgs } from '../common/page.dto';
import { CreateTenantInput, MeView, TenantView, UpdateTenantInput } from './dto/tenant.dto';
import { TenantsService } from './tenants.service';
import { JobView } from '../jobs/dto/job.dto';
import { ApiKeyView, CreateApiKeyInput, IssuedApiKeyView } from '../auth/dto/api-key.dto';

@Resolver(() => TenantView)
export class TenantsResolver {
  constructor(
    private readonly service: TenantsService,
    private readonly keys: ApiKeysService,
  ) {}

  @Query(() => MeView, { description: 'The API key the request is made with: its role and its tenant' })
  async me(@Actor() actor: Principal): Promise<MeView> {
    const tenant = actor.tenantId ? await this.service.get(actor, actor.tenantId) : null;
    return { keyId: actor.keyId, role: actor.role, tenant };
  }

  @Query(() => [TenantView], { description: "Tenants, oldest first: every one for an admin key, its own for a tenant's key" })
  tenants(@Actor() actor: Principal, @Args() page: PageArgs) {
    return this.service.list(actor, page);
  }

  @Query(() => TenantView, { description: "One tenant; another tenant's answers TENANT_NOT_FOUND, like a missing one" })
  tenant(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The tenant' }) id: string) {
    return this.service.get(actor, id);
  }

  @Mutation(() => TenantView, {
    description: 'Creates a tenant (admin keys only); on a cluster (BERTH_ENGINE=swarm) it is placed on the node with the most room',
  })
  createTenant(@Actor() actor: Principal, @Args('input', { description: 'The new tenant' }) input: CreateTenantInput) {
    return this.service.create(actor, input);
  }

  @Mutation(() => TenantView, { description: 'Changes a tenant; its quotas and suspension only with an admin key' })
  updateTenant(
    @Actor() actor: Principal,
    @Args('id', { type: () => ID, description: 'The tenant' }) id: string,
    @Args('input', { description: 'What to change' }) input: UpdateTenantInput,
  ) {
    return this.service.update(actor, id, input);
  }

  @Mutation(() => JobView, { description: 'Admin only: deletes the tenant with a job; force deletes its sites too' })
  deleteTenant(
    @Actor() actor: Principal,
    @Args('id', { type: () => ID, description: 'The tenant' }) id: string,
    @Args('force', {
      nullable: true,
      defaultValue: false,
      description: "Delete the tenant's sites too (otherwise a tenant with sites answers TENANT_HAS_SITES)",
    })
    force: boolean,
  ) {
    return this.service.delete(actor, id, force);
  }

  @Mutation(() => IssuedApiKeyView, {
    description: 'Issues an API key of a tenant; the key is shown once, in this answer (Berth keeps only its hash)',
  })
  createApiKey(
    @Actor() actor: Principal,
    @Args('tenantId', { type: () => ID, description: 'The tenant the key acts for' }) tenantId: string,
    @Args('input', { nullable: true, description: 'Its role and label; without it, a TENANT key without a label' })
    input?: CreateApiKeyInput,
  ) {
    return this.keys.create(actor, tenantId, input?.role, input?.name);
  }

  @Query(() => [ApiKeyView], { description: "A tenant's API keys, oldest first, without the keys themselves" })
  apiKeys(@Actor() actor: Principal, @Args('tenantId', { type: () => ID, description: 'The tenant' }) tenantId: string) {
    return this.keys.list(actor, tenantId);
  }

  @Mutation(() => ApiKeyView, { description: 'Revokes an API key: it stops working at once, in every Berth process' })
  revokeApiKey(@Actor() actor: Principal, @Args('id', { type: () => ID, description: 'The key' }) id: string) {
    return this.keys.revoke(actor, id);
  }
}
