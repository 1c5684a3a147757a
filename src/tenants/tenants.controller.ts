import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Actor, type Principal } from '../common/principal';
import { ApiKeysService } from '../auth/api-keys.service';
import { PageArgs } from '../common/page.dto';
import { CreateTenantInput, DeleteTenantArgs, TenantView, UpdateTenantInput } from './dto/tenant.dto';
import { Operation } from '../common/api-operation';
import { ErrorCode } from '../common/errors';

import { TenantsService } from './tenants.service';
import { JobAcceptedView } from '../jobs/dto/job.dto';
import { ApiKeyView, CreateApiKeyInput, IssuedApiKeyView } from '../auth/dto/api-key.dto';

@ApiTags('tenants')
@Controller('v1')
export class TenantsController {
  constructor(
    private readonly tenants: TenantsService,
    private readonly keys: ApiKeysService,
  ) {}

  @Post('tenants')
  @ApiCreatedResponse({ type: TenantView })
  @Operation('createTenant', {
    summary: 'Create a tenant',
    description: 'Admin keys only. On a cluster (BERTH_ENGINE=swarm) the tenant is placed on the node with the most room.',
    errors: [ErrorCode.TENANT_SLUG_TAKEN, ErrorCode.NO_CAPACITY],
  })
  create(@Actor() actor: Principal, @Body() input: CreateTenantInput) {
    return this.tenants.create(actor, input);
  }

  @Get('tenants')
  @ApiOkResponse({ type: [TenantView] })
  @Operation('listTenants', { summary: 'List tenants', description: "Admin keys: every tenant; a tenant's key: its own." })
  list(@Actor() actor: Principal, @Query() page: PageArgs) {
    return this.tenants.list(actor, page);
  }

  @Get('tenants/:id')
  @ApiOkResponse({ type: TenantView })
  @Operation('getTenant', { summary: 'Get a tenant', errors: [ErrorCode.TENANT_NOT_FOUND] })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.tenants.get(actor, id);
  }

  @Patch('tenants/:id')
  @ApiOkResponse({ type: TenantView })
  @Operation('updateTenant', {
    summary: 'Change a tenant',
    description: "A tenant's key may change its name and contact; quotas and suspension need an admin key.",
    errors: [ErrorCode.TENANT_NOT_FOUND, ErrorCode.TENANT_DELETING],
  })
  update(@Actor() actor: Principal, @Param('id') id: string, @Body() input: UpdateTenantInput) {
    return this.tenants.update(actor, id, input);
  }

  /** Admin only: 409 TENANT_HAS_SITES while the tenant has sites, unless force=true deletes them too. */
  @Delete('tenants/:id')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobAcceptedView, description: 'The deletion job' })
  @Operation('deleteTenant', {
    summary: 'Delete a tenant',
    description:
      'Admin keys only. Refused with TENANT_HAS_SITES while the tenant has sites, unless force=true deletes them too (as one job).',
    errors: [ErrorCode.TENANT_NOT_FOUND, ErrorCode.TENANT_HAS_SITES, ErrorCode.TENANT_DELETING],
  })
  async remove(@Actor() actor: Principal, @Param('id') id: string, @Query() args: DeleteTenantArgs) {
    return { job: await this.tenants.delete(actor, id, args.force ?? false) };
  }

  @Post('tenants/:id/api-keys')
  @ApiCreatedResponse({ type: IssuedApiKeyView })
  @Operation('createApiKey', {
    summary: 'Issue an API key',
    description: 'The key is shown once, in this answer; Berth keeps only its hash.',
    errors: [ErrorCode.TENANT_NOT_FOUND, ErrorCode.TENANT_DELETING],
  })
  createKey(@Actor() actor: Principal, @Param('id') id: string, @Body() input: CreateApiKeyInput) {
    return this.keys.create(actor, id, input.role, input.name);
  }

  @Get('tenants/:id/api-keys')
  @ApiOkResponse({ type: [ApiKeyView] })
  @Operation('listApiKeys', {
    summary: "List a tenant's API keys",
    description: 'Without the keys themselves.',
    errors: [ErrorCode.TENANT_NOT_FOUND],
  })
  listKeys(@Actor() actor: Principal, @Param('id') id: string) {
    return this.keys.list(actor, id);
  }

  @Delete('api-keys/:id')
  @HttpCode(200)
  @ApiOkResponse({ type: ApiKeyView })
  @Operation('revokeApiKey', {
    summary: 'Revoke an API key',
    description: 'It stops working at once.',
    errors: [ErrorCode.API_KEY_NOT_FOUND],
  })
  revokeKey(@Actor() actor: Principal, @Param('id') id: string) {
    return this.keys.revoke(actor, id);
  }
}
