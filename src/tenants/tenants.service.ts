import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { Prisma, type Job, type Tenant } from '../generated/prisma/client';
import { JobKind, JobStatus, SiteStatus, TenantStatus } from '../generated/prisma/enums';
import { randomToken, SecretBox } from '../common/crypto';
import { BerthError, ErrorCode } from '../common/errors';
import { isUuid } from '../common/ids';
import { EventsService } from '../events/events.service';
import { JobsService, toJobView } from '../jobs/jobs.service';
import { NodesService } from '../nodes/nodes.service';
import { newTenantNeed } from '../nodes/placement';

import { assertAdmin, assertCanWrite, canSeeTenant, tenantScope, type Principal } from '../common/principal';
import type { CreateTenantInput, TenantView, UpdateTenantInput } from './dto/tenant.dto';
import type { TenantDeletionParams } from './tenant-deletion.service';
import { type JobView } from '../jobs/dto/job.dto';

export function toTenantView(t: Tenant): TenantView {
  const { id, slug, name, contactEmail, status, maxSites, maxMemoryMb, maxCpus, createdAt, updatedAt } = t;
  return { id, slug, name, contactEmail, status, maxSites, maxMemoryMb, maxCpus, createdAt, updatedAt };
}

export { isUuid };

@Injectable()
export class TenantsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    private readonly box: SecretBox,
    private readonly jobs: JobsService,
    private readonly nodes: NodesService,
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
  ) {}

  async create(actor: Principal, input: CreateTenantInput): Promise<TenantView> {
    assertAdmin(actor);
    // Asked of the nodes' engines before the transaction: it holds the placement lock.
    const held = this.nodes.cluster ? await this.nodes.heldFor(input.slug) : new Map<string, string>();
    try {
      const tenant = await this.prisma.$transaction(async (tx) => {
        const t = await tx.tenant.create({
          data: { ...input, dbRootPasswordEnc: this.box.seal(randomToken(24)) },
        });
        // On a cluster the tenant lives on one node with room for its database server and a
        // first site; with none, nothing of the tenant is left (the transaction rolls back).
        if (this.nodes.cluster) {
          const need = newTenantNeed(
            { memoryMb: this.config.BERTH_DB_MEMORY_MB, cpus: this.config.BERTH_DB_CPUS },
            { memoryMb: t.maxMemoryMb, cpus: t.maxCpus },
          );
          const nodeId = await this.nodes.place(tx, need, held);
          Object.assign(t, await tx.tenant.update({ where: { id: t.id }, data: { nodeId } }));
        }
        await this.events.record(
          { tenantId: t.id, type: 'tenant.created', message: `Tenant ${t.slug} created`, actorKeyId: actor.keyId },
          tx,
        );
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
    const current = await this.getRow(actor, id);
    const { suspended, ...fields } = input;
    const adminOnly =
      suspended !== undefined || fields.maxSites !== undefined || fields.maxMemoryMb !== undefined || fields.maxCpus !== undefined;
    if (adminOnly) assertAdmin(actor);
    if (current.status === TenantStatus.DELETING) throw new BerthError(ErrorCode.TENANT_DELETING, `Tenant ${id} is being deleted`);
    const data: Prisma.TenantUpdateInput = { ...fields };
    if (suspended !== undefined) data.status = suspended ? TenantStatus.SUSPENDED : TenantStatus.ACTIVE;
    const tenant = await this.prisma.$transaction(async (tx) => {
      // The condition closes the race with a deletion asked for since the check above.
      const t = await tx.tenant.update({ where: { id, status: { not: TenantStatus.DELETING } }, data }).catch((e: unknown) => {
        if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2025')
          throw new BerthError(ErrorCode.TENANT_DELETING, `Tenant ${id} is being deleted`);
        throw e;
      });
      const changed = Object.keys(input).join(', ') || 'nothing';
      await this.events.record(
        {
          tenantId: id,
          type: suspended === undefined ? 'tenant.updated' : suspended ? 'tenant.suspended' : 'tenant.resumed',
          message: `Tenant ${t.slug} updated: ${changed}`,
          data: { fields: Object.keys(input) },
          actorKeyId: actor.keyId,
        },
        tx,
      );
      return t;
    });
    return toTenantView(tenant);
  }

  /**
   * Deletes a tenant with a job: its sites (only with force; otherwise it must have none),
   * then its network, database server and volume, its keys and every row of it but its
   * events. Asking again while a deletion runs answers that job.
   */
  async delete(actor: Principal, id: string, force = false): Promise<JobView> {
    assertAdmin(actor);
    const job = await this.prisma.$transaction(async (tx) => {
      // Serialises with site creation, which locks the tenant row too.
      const [row] = await tx.$queryRaw<
        { id: string }[]
      >`SELECT id FROM "Tenant" WHERE id = ${isUuid(id) ? id : '00000000-0000-0000-0000-000000000000'}::uuid FOR UPDATE`;
      const tenant = row ? await tx.tenant.findUnique({ where: { id: row.id } }) : null;
      if (!tenant) throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${id} was not found`);
      const running = await tx.job.findFirst({
        where: { tenantId: id, kind: JobKind.DELETE_TENANT, status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] } },
      });
      if (running) return running;
      const sites = await tx.site.count({ where: { tenantId: id, status: { not: SiteStatus.DELETED } } });
      if (sites > 0 && !force) {
        throw new BerthError(
          ErrorCode.TENANT_HAS_SITES,
          `Tenant ${tenant.slug} still has ${sites} site(s); delete them first or ask with force=true`,
          { sites },
        );
      }
      await tx.tenant.update({ where: { id }, data: { status: TenantStatus.DELETING } });
      const params: TenantDeletionParams = { force, slug: tenant.slug, actorKeyId: actor.keyId };
      const created: Job = await tx.job.create({
        data: { tenantId: id, kind: JobKind.DELETE_TENANT, generation: 0, params: params as unknown as Prisma.InputJsonValue },
      });
      await this.events.record(
        {
          tenantId: id,
          type: 'tenant.delete.requested',
          message: `Deletion of tenant ${tenant.slug} requested${force ? ` with its ${sites} site(s)` : ''}`,
          data: { jobId: created.id, force, sites },
          actorKeyId: actor.keyId,
        },
        tx,
      );
      return created;
    });
    await this.jobs.enqueue(job);
    return toJobView(job);
  }
}
