import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Actor, type Principal } from '../common/principal';
import { ApiKeysService } from '../auth/api-keys.service';
import { PageArgs } from '../common/page.dto';
import { CreateTenantInput, DeleteTenantArgs, TenantView, UpdateTenantInput } from './dto/tenant.dto';

import { TenantsService } from './tenants.service';
import { JobView } from '../jobs/dto/job.dto';
import { ApiKeyView, CreateApiKeyInput, IssuedApiKeyView } from '../auth/dto/api-key.dto';

@ApiTags('tenants')
@ApiBearerAuth()
@Controller('v1')
export class TenantsController {
  constructor(
    private readonly tenants: TenantsService,
    private readonly keys: ApiKeysService,
  ) {}

  @Post('tenants')
  @ApiCreatedResponse({ type: TenantView })
  create(@Actor() actor: Principal, @Body() input: CreateTenantInput) {
    return this.tenants.create(actor, input);
  }

  @Get('tenants')
  @ApiOkResponse({ type: [TenantView] })
  list(@Actor() actor: Principal, @Query() page: PageArgs) {
    return this.tenants.list(actor, page);
  }

  @Get('tenants/:id')
  @ApiOkResponse({ type: TenantView })
  get(@Actor() actor: Principal, @Param('id') id: string) {
    return this.tenants.get(actor, id);
  }

  @Patch('tenants/:id')
  @ApiOkResponse({ type: TenantView })
  update(@Actor() actor: Principal, @Param('id') id: string, @Body() input: UpdateTenantInput) {
    return this.tenants.update(actor, id, input);
  }

  /** Admin only: 409 TENANT_HAS_SITES while the tenant has sites, unless force=true deletes them too. */
  @Delete('tenants/:id')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: JobView, description: 'The deletion job, as { job } like the site actions' })
  async remove(@Actor() actor: Principal, @Param('id') id: string, @Query() args: DeleteTenantArgs) {
    return { job: await this.tenants.delete(actor, id, args.force ?? false) };
  }

  @Post('tenants/:id/api-keys')
  @ApiCreatedResponse({ type: IssuedApiKeyView })
  createKey(@Actor() actor: Principal, @Param('id') id: string, @Body() input: CreateApiKeyInput) {
    return this.keys.create(actor, id, input.role, input.name);
  }

  @Get('tenants/:id/api-keys')
  @ApiOkResponse({ type: [ApiKeyView] })
  listKeys(@Actor() actor: Principal, @Param('id') id: string) {
    return this.keys.list(actor, id);
  }

  @Delete('api-keys/:id')
  @HttpCode(200)
  @ApiOkResponse({ type: ApiKeyView })
  revokeKey(@Actor() actor: Principal, @Param('id') id: string) {
    return this.keys.revoke(actor, id);
  }
}
