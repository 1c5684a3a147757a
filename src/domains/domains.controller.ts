import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Actor, type Principal } from '../common/principal';
import { DomainsService } from './domains.service';
import { AddDomainInput, DomainView } from './dto/domain.dto';

@ApiTags('domains')
@ApiBearerAuth()
@Controller('v1/sites/:id/domains')
export class DomainsController {
  constructor(private readonly domains: DomainsService) {}

  @Post()
  @HttpCode(201)
  @ApiCreatedResponse({ type: DomainView })
  add(@Actor() actor: Principal, @Param('id') id: string, @Body() input: AddDomainInput) {
    return this.domains.add(actor, id, input);
  }

  @Get()
  @ApiOkResponse({ type: [DomainView] })
  list(@Actor() actor: Principal, @Param('id') id: string) {
    return this.domains.list(actor, id);
  }

  @Post(':hostname/verify')
  @HttpCode(200)
  @ApiOkResponse({ type: DomainView, description: 'The domain after a check of its TXT record: ACTIVE once it holds the token' })
  verify(@Actor() actor: Principal, @Param('id') id: string, @Param('hostname') hostname: string) {
    return this.domains.verify(actor, id, hostname);
  }

  @Delete(':hostname')
  @ApiOkResponse({ type: DomainView })
  remove(@Actor() actor: Principal, @Param('id') id: string, @Param('hostname') hostname: string) {
    return this.domains.remove(actor, id, hostname);
  }
}
