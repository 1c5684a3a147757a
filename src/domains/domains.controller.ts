import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Actor, type Principal } from '../common/principal';
import { DomainsService } from './domains.service';
import { AddDomainInput, DomainView } from './dto/domain.dto';
import { Operation } from '../common/api-operation';
import { ErrorCode } from '../common/errors';

@ApiTags('domains')
@Controller('v1/sites/:id/domains')
export class DomainsController {
  constructor(private readonly domains: DomainsService) {}

  @Post()
  @HttpCode(201)
  @ApiCreatedResponse({ type: DomainView })
  @Operation('addDomain', {
    summary: 'Add a domain to a site',
    description:
      'The domain is PENDING until its TXT record proves the tenant holds it (see verification in the answer); then the edge routes it and gets its certificate.',
    errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.SITE_DELETED, ErrorCode.DOMAIN_TAKEN],
  })
  add(@Actor() actor: Principal, @Param('id') id: string, @Body() input: AddDomainInput) {
    return this.domains.add(actor, id, input);
  }

  @Get()
  @ApiOkResponse({ type: [DomainView] })
  @Operation('listDomains', { summary: "List a site's domains", errors: [ErrorCode.SITE_NOT_FOUND] })
  list(@Actor() actor: Principal, @Param('id') id: string) {
    return this.domains.list(actor, id);
  }

  @Post(':hostname/verify')
  @HttpCode(200)
  @ApiOkResponse({ type: DomainView, description: 'The domain after a check of its TXT record: ACTIVE once it holds the token' })
  @Operation('verifyDomain', { summary: "Check a domain's TXT record now", errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.DOMAIN_NOT_FOUND] })
  verify(@Actor() actor: Principal, @Param('id') id: string, @Param('hostname') hostname: string) {
    return this.domains.verify(actor, id, hostname);
  }

  @Delete(':hostname')
  @ApiOkResponse({ type: DomainView })
  @Operation('removeDomain', { summary: 'Remove a domain from a site', errors: [ErrorCode.SITE_NOT_FOUND, ErrorCode.DOMAIN_NOT_FOUND] })
  remove(@Actor() actor: Principal, @Param('id') id: string, @Param('hostname') hostname: string) {
    return this.domains.remove(actor, id, hostname);
  }
}
