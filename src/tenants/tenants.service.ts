import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import { Prisma, type Tenant } from '../generated/prisma/client';
import { TenantStatus } from '../generated/prisma/enums';
import { randomToken, SecretBox } from '../common/crypto';
import { BerthError, ErrorCode } from '../common/errors';
import { EventsService } from '../events/events.service';
import { assertAdmin, assertCanWrite, canSeeTenant, tenantScope, type Principal } from '../auth/principal';
import type { CreateTenantInput, TenantView, UpdateTenantInput } from './dto/tenant.dto';

export function toTenantView(t: Tenant): TenantView {
  const { id, slug, name, contactEmail, status, maxSites, maxMemoryMb, maxCpus, createdAt, updatedAt } = t;
  return { id, slug, name, contactEmail, status, maxSites, maxMemoryMb, maxCpus, createdAt, updatedAt };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (id: string) => UUID.test(id);

@Injectable()
export class TenantsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    private readonly box: SecretBox,
  ) {}

  async create(actor: Principal, input: CreateTenantInput): Promise<TenantView> {
    assertAdmin(actor);
    try {
      const tenant = await this.prisma.$transaction(async (tx) => {
        const t = await tx.tenant.create({
          data: { ...input, dbRootPasswordEnc: this.box.seal(randomToken(24)) },
        });
        await this.events.record({ tenantId: t.id, type: 'tenant.created', message: `Tenant ${t.slug} created`, actorKeyId: actor.keyId }, tx);
        return t;
      });
      return toTenantView(tenant);
    } catch (e) {
      if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') {
        throw new BerthError(ErrorCode.TENANT_SLUG_TAKEN, `A tenant with slug "${input.slug}" already exists; choose another slug`);
      }
      throw e;
    }
  }

  async list(actor: Principal, page: { limit: number; offset: number }): Promise<TenantView[]> {
    const scope = tenantScope(actor);
    const rows = await this.prisma.tenant.findMany({
      where: scope ? { id: scope } : {},
      orderBy: { createdAt: 'asc' },
      take: page.limit,
      skip: page.offset,
    });
    return rows.map(toTenantView);
  }

  /** The tenant, if the actor may see it; another tenant's id answers like a missing one. */
  async getRow(actor: Principal, id: string): Promise<Tenant> {
    const tenant = isUuid(id) && canSeeTenant(actor, id) ? await this.prisma.tenant.findUnique({ where: { id } }) : null;
    if (!tenant) throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${id} was not found`);
    return tenant;
  }

  async get(actor: Principal, id: string): Promise<TenantView> {
    return toTenantView(await this.getRow(actor, id));
  }

  async update(actor: Principal, id: string, input: UpdateTenantInput): Promise<TenantView> {
    assertCanWrite(actor);
    await this.getRow(actor, id);
    const { suspended, ...fields } = input;
    const adminOnly = suspended !== undefined || fields.maxSites !== undefined || fields.maxMemoryMb !== undefined || fields.maxCpus !== undefined;
    if (adminOnly) assertAdmin(actor);
    const data: Prisma.TenantUpdateInput = { ...fields };
    if (suspended !== undefined) data.status = suspended ? TenantStatus.SUSPENDED : TenantStatus.ACTIVE;
    const tenant = await this.prisma.$transaction(async (tx) => {
      const t = await tx.tenant.update({ where: { id }, data });
      const changed = Object.keys(input).join(', ') || 'nothing';
      await this.events.record(
        { tenantId: id, type: suspended === undefined ? 'tenant.updated' : suspended ? 'tenant.suspended' : 'tenant.resumed', message: `Tenant ${t.slug} updated: ${changed}`, data: { fields: Object.keys(input) }, actorKeyId: actor.keyId },
        tx,
      );
      return t;
    });
    return toTenantView(tenant);
  }
}
