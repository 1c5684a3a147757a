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

  @Query(() => MeView)
  async me(@Actor() actor: Principal): Promise<MeView> {
    const tenant = actor.tenantId ? await this.service.get(actor, actor.tenantId) : null;
    return { keyId: actor.keyId, role: actor.role, tenant };
  }

  @Query(() => [TenantView])
  tenants(@Actor() actor: Principal, @Args() page: PageArgs) {
    return this.service.list(actor, page);
  }

  @Query(() => TenantView)
  tenant(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return this.service.get(actor, id);
  }

  @Mutation(() => TenantView)
  createTenant(@Actor() actor: Principal, @Args('input') input: CreateTenantInput) {
    return this.service.create(actor, input);
  }

  @Mutation(() => TenantView)
  updateTenant(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string, @Args('input') input: UpdateTenantInput) {
    return this.service.update(actor, id, input);
  }

  @Mutation(() => JobView, { description: 'Admin only: deletes the tenant with a job; force deletes its sites too' })
  deleteTenant(
    @Actor() actor: Principal,
    @Args('id', { type: () => ID }) id: string,
    @Args('force', { nullable: true, defaultValue: false }) force: boolean,
  ) {
    return this.service.delete(actor, id, force);
  }

  @Mutation(() => IssuedApiKeyView)
  createApiKey(
    @Actor() actor: Principal,
    @Args('tenantId', { type: () => ID }) tenantId: string,
    @Args('input', { nullable: true }) input?: CreateApiKeyInput,
  ) {
    return this.keys.create(actor, tenantId, input?.role, input?.name);
  }

  @Query(() => [ApiKeyView])
  apiKeys(@Actor() actor: Principal, @Args('tenantId', { type: () => ID }) tenantId: string) {
    return this.keys.list(actor, tenantId);
  }

  @Mutation(() => ApiKeyView)
  revokeApiKey(@Actor() actor: Principal, @Args('id', { type: () => ID }) id: string) {
    return this.keys.revoke(actor, id);
  }
}
