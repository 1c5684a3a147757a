import { Inject, Injectable } from '@nestjs/common';
import { unfinishedClone } from '../jobs/job-params';
import type { Readable } from 'node:stream';
import { PrismaService } from '../database/prisma.service';
import { Prisma, type Job, type Site } from '../generated/prisma/client';
import { DesiredState, JobKind, SiteStatus, TenantStatus } from '../generated/prisma/enums';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { randomToken, SecretBox } from '../common/crypto';
import { BerthError, ErrorCode } from '../common/errors';
import { assertCanWrite, canSeeTenant, isAdmin, tenantScope, type Principal } from '../common/principal';
import { EventsService } from '../events/events.service';
import { JobsService, toJobView } from '../jobs/jobs.service';
import { RedisService } from '../redis/redis.service';
import { DockerService, isConflict, isNotFound } from '../docker/docker.service';
import { ContainerStateService } from '../docker/container-state.service';
import { EdgeService, PRIMARY_DOMAIN } from '../edge/edge.service';
import { LABEL, MANAGED_BY } from '../docker/plan.types';
import { isUuid } from '../common/ids';
import type { CreateSiteInput, ContainerView, SiteAndJobView, SiteFilterArgs, SiteView, UpdateSiteInput } from './dto/site.dto';
import { UPDATABLE } from './site-runner.service';
import { validateSiteEnv } from './site-env';
import { names } from './site-plan';
import { wordpressSettings } from './wordpress-install';

import { siteUrl } from '../common/site-url';
import { siteChannel } from './site-urls';
import { lockSiteRow } from './site-row';
import { type JobView } from '../jobs/dto/job.dto';

const ACTIONS = {
  start: { kind: JobKind.START, desired: DesiredState.RUNNING },
  stop: { kind: JobKind.STOP, desired: DesiredState.STOPPED },
  restart: { kind: JobKind.RESTART, desired: DesiredState.RUNNING },
  delete: { kind: JobKind.DELETE, desired: DesiredState.ABSENT },
} as const;
export type SiteAction = keyof typeof ACTIONS;

/** The columns a site's view shows as they are (never its secrets or internal bookkeeping). */
const VIEW_FIELDS = [
  'id',
  'tenantId',
  'name',
  'status',
  'health',
  'healthChangedAt',
  'lastProbeMs',
  'restartPolicy',
  'memoryMb',
  'cpus',
  'imageTag',
  'generation',
  'lastError',
  'createdAt',
  'updatedAt',
  'deletedAt',
] as const;
const pick = <T, K extends keyof T>(row: T, keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, row[k]])) as Pick<T, K>;

/** Where a view made for a single-site GraphQL query keeps its loader of live containers. */
const LIVE = Symbol('liveContainers');

type SiteWithSlug = Site & { tenant: { slug: string; contactEmail: string }; domains?: { hostname: string }[] };

/**
 * {@link VIEW_INCLUDE} in SQL: a site row, its tenant's slug and contact, its primary domain
 * (the oldest, should there ever be two). The columns are named, not `s.*`: PostgreSQL fixes a
 * prepared statement's result when it is parsed, so a column added by a migration while this
 * process runs would fail every later execution on its connections ("cached plan must not
 * change result type").
 */
const SITE_VIEW_SQL = `SELECT ${Object.values(Prisma.SiteScalarFieldEnum)
  .map((c) => `s."${c}"`)
  .join(', ')}, t.slug AS "tenantSlug", t."contactEmail" AS "tenantContactEmail",
  (SELECT d.hostname FROM "Domain" d WHERE d."siteId" = s.id AND d."primary" AND d."verifiedAt" IS NOT NULL
   ORDER BY d."createdAt", d.id LIMIT 1) AS "primaryHostname"
  FROM "Site" s JOIN "Tenant" t ON t.id = s."tenantId" WHERE s.id = $1::uuid`;
type SiteViewRow = Site & { tenantSlug: string; tenantContactEmail: string; primaryHostname: string | null };
/** What a site's view needs beside the row: its tenant's slug and its primary domain. */
const VIEW_INCLUDE = {
  tenant: { select: { slug: true, contactEmail: true } },
  domains: PRIMARY_DOMAIN,
} as const;

/** Where a new site's content comes from when it is not a fresh WordPress (a clone: a backup). */
export interface SiteOrigin {
  /** The provisioning job's params, which say what to copy. */
  params: Prisma.InputJsonObject;
  /** For the site.created event. */
  description: string;
  /** More the new site starts with (its domains, say), written in the transaction that creates it. */
  withSite?: (tx: Prisma.TransactionClient, site: Site) => Promise<void>;
}

/**
 * A site still being made from a backup (a clone whose copy has not completed: running,
 * cancelled or failed) can only be deleted: any other request's job would supersede the copy
 * and install a blank WordPress in its place, reported RUNNING.
 */
async function refuseUnfinishedClone(tx: Prisma.TransactionClient, site: Pick<Site, 'id' | 'name' | 'installedAt'>): Promise<void> {
  if (await unfinishedClone(tx, site))
    throw new BerthError(
      ErrorCode.SITE_BUSY,
      `Site ${site.name} is being made from a backup (a clone) and its copy has not completed; until it has, it can only be deleted (if the copy failed or was cancelled: delete it and clone again)`,
    );
}

@Injectable()
export class SitesService {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly jobs: JobsService,
    private readonly eventLog: EventsService,
    private readonly redis: RedisService,
    private readonly docker: DockerService,
    private readonly containers: ContainerStateService,
    private readonly box: SecretBox,
    private readonly edge: EdgeService,
  ) {}

  toView(site: SiteWithSlug, live?: ContainerView[]): SiteView {
    return {
      ...pick(site, VIEW_FIELDS),
      restartCount: site.restartCount,
      env: site.env as Record<string, string>,
      wordpress: { locale: null, ...wordpressSettings(site, site.tenant), installedAt: site.installedAt },
      url: site.status === SiteStatus.DELETED ? null : siteUrl(this.config.BERTH_PUBLISH_ADDRESS, site.hostPort),
      hostname: this.edge.enabled && site.status !== SiteStatus.DELETED ? this.edge.hostname(site, site.tenant) : null,
      publicUrl: site.status === SiteStatus.DELETED ? null : this.edge.publicUrl(site, site.tenant, site.domains?.[0]?.hostname),
      ...(live
        ? { containers: live, restartCount: Math.max(site.restartCount, live.find((c) => c.role === 'wordpress')?.restartCount ?? 0) }
        : {}),
    };
  }

  /** Creates the site row and its provisioning job in one transaction, then enqueues the job. */
  async create(actor: Principal, input: CreateSiteInput, idempotencyKey?: string, origin?: SiteOrigin): Promise<SiteAndJobView> {
    assertCanWrite(actor);
    const tenantId = isAdmin(actor) ? input.tenantId : actor.tenantId;
    if (!tenantId) throw new BerthError(ErrorCode.VALIDATION_FAILED, 'tenantId is required with an admin key');
    if (!isAdmin(actor) && input.tenantId && input.tenantId !== actor.tenantId) {
      throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${input.tenantId} was not found`);
    }
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,200}$/.test(idempotencyKey)) {
      throw new BerthError(ErrorCode.VALIDATION_FAILED, 'Idempotency-Key must be 1 to 200 printable ASCII characters');
    }
    const env = validateSiteEnv(input.env);
    const { adminPassword, ...wordpressInput } = input.wordpress ?? {};
    const replay = idempotencyKey ? await this.replay(tenantId, idempotencyKey, input.name) : undefined;
    if (replay) return replay;
    let created: { site: SiteWithSlug; job: Job };
    try {
      created = await this.prisma.$transaction(async (tx) => {
        // Serialises creations per tenant so the quota cannot be overrun by a burst.
        const [tenant] = await tx.$queryRaw<
          { id: string; slug: string; contactEmail: string; status: TenantStatus; maxSites: number; maxMemoryMb: number; maxCpus: number }[]
        >`SELECT id, slug, "contactEmail", status, "maxSites", "maxMemoryMb", "maxCpus" FROM "Tenant" WHERE id = ${tenantId}::uuid FOR UPDATE`;
        if (!tenant) throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${tenantId} was not found`);
        if (tenant.status === TenantStatus.SUSPENDED)
          throw new BerthError(ErrorCode.TENANT_SUSPENDED, 'The tenant is suspended; resume it before creating sites');
        if (tenant.status === TenantStatus.DELETING) throw new BerthError(ErrorCode.TENANT_DELETING, 'The tenant is being deleted');
        const { memoryMb, cpus } = input.resources ?? {};
        if (memoryMb && memoryMb > tenant.maxMemoryMb)
          throw new BerthError(
            ErrorCode.QUOTA_EXCEEDED,
            `resources.memoryMb ${memoryMb} is over the tenant's limit of ${tenant.maxMemoryMb}`,
          );
        if (cpus && cpus > tenant.maxCpus)
          throw new BerthError(ErrorCode.QUOTA_EXCEEDED, `resources.cpus ${cpus} is over the tenant's limit of ${tenant.maxCpus}`);
        const live = await tx.site.count({ where: { tenantId, liveName: { not: null } } });
        if (live >= tenant.maxSites)
          throw new BerthError(ErrorCode.QUOTA_EXCEEDED, `The tenant already has ${live} of its ${tenant.maxSites} sites`);
        // <site>-<tenant> can be spelled by two pairs (blog-x in acme, blog in x-acme): a name
        // whose platform hostname another tenant's live site has already is refused.
        const label = `${input.name}-${tenant.slug}`;
        const [clash] = await tx.$queryRaw<{ one: number }[]>`
          SELECT 1 AS one FROM "Site" s JOIN "Tenant" t ON t.id = s."tenantId"
          WHERE s."liveName" || '-' || t.slug = ${label} AND s."tenantId" <> ${tenantId}::uuid LIMIT 1`;
        if (clash)
          throw new BerthError(
            ErrorCode.DOMAIN_TAKEN,
            `The site's hostname ${this.edge.hostname(input, tenant)} is already another site's; choose another name`,
          );
        const site = await tx.site.create({
          data: {
            tenantId,
            name: input.name,
            liveName: input.name,
            env,
            idempotencyKey,
            restartPolicy: input.restartPolicy ?? 'unless-stopped',
            memoryMb: memoryMb ?? null,
            cpus: cpus ?? null,
            dbName: '',
            dbUser: '',
            dbPasswordEnc: this.box.seal(randomToken(24)),
            // The password is sealed, and only until the install step has used it.
            wordpress: { ...wordpressSettings(input, tenant, wordpressInput) },
            adminPasswordSealed: adminPassword ? this.box.seal(adminPassword) : null,
          },
        });
        // Database identifiers come from the id, never from user input.
        const ident = `wp_${site.id.replace(/-/g, '').slice(0, 16)}`;
        const named = await tx.site.update({ where: { id: site.id }, data: { dbName: ident, dbUser: ident } });
        await origin?.withSite?.(tx, named);
        const job = await tx.job.create({
          data: { tenantId, siteId: site.id, kind: JobKind.PROVISION, generation: site.generation, params: origin?.params ?? {} },
        });
        await this.eventLog.record(
          {
            tenantId,
            siteId: site.id,
            type: 'site.created',
            message: origin ? `Site ${site.name} requested: ${origin.description}` : `Site ${site.name} requested`,
            data: { jobId: job.id, ...(origin ? { origin: origin.params } : {}) },
            actorKeyId: actor.keyId,
          },
          tx,
        );
        return { site: { ...named, tenant: { slug: tenant.slug, contactEmail: tenant.contactEmail } }, job };
      });
    } catch (e) {
      if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') {
        // Lost a race: either the same Idempotency-Key (answer with the winner) or the same name.
        if (idempotencyKey) {
          const again = await this.replay(tenantId, idempotencyKey, input.name);
          if (again) return again;
        }
        throw new BerthError(ErrorCode.SITE_NAME_TAKEN, `The tenant already has a site named "${input.name}"; choose another name`);
      }
      throw e;
    }
    await this.jobs.enqueue(created.job);
    return { site: this.toView(created.site), job: toJobView(created.job) };
  }

  private async replay(tenantId: string, key: string, name: string): Promise<SiteAndJobView | undefined> {
    const site = await this.prisma.site.findUnique({
      where: { tenantId_idempotencyKey: { tenantId, idempotencyKey: key } },
      include: VIEW_INCLUDE,
    });
    if (!site) return undefined;
    if (site.name !== name)
      throw new BerthError(ErrorCode.IDEMPOTENCY_KEY_REUSED, 'This Idempotency-Key was already used for a different site');
    const job = await this.prisma.job.findFirstOrThrow({
      where: { siteId: site.id, kind: JobKind.PROVISION },
      orderBy: { createdAt: 'asc' },
    });
    return { site: this.toView(site), job: toJobView(job) };
  }

  async list(actor: Principal, filter: SiteFilterArgs): Promise<SiteView[]> {
    const scope = tenantScope(actor);
    if (scope && filter.tenantId && filter.tenantId !== scope) return [];
    const rows = await this.prisma.site.findMany({
      where: {
        tenantId: scope ?? filter.tenantId,
        ...(filter.status ? { status: filter.status } : { status: { not: SiteStatus.DELETED } }),
      },
      orderBy: { createdAt: 'asc' },
      take: filter.limit,
      skip: filter.offset,
      include: VIEW_INCLUDE,
    });
    return rows.map((s) => this.toView(s));
  }

  /** The site if the actor may see it; another tenant's site answers like a missing one. */
  async getRow(actor: Principal, id: string): Promise<Site> {
    const site = isUuid(id) ? await this.prisma.site.findUnique({ where: { id } }) : null;
    if (!site || !canSeeTenant(actor, site.tenantId)) throw new BerthError(ErrorCode.SITE_NOT_FOUND, `Site ${id} was not found`);
    return site;
  }

  /** One site with the live state of its containers (one query, then the Docker Engine). */
  async get(actor: Principal, id: string): Promise<SiteView> {
    const site = await this.getRowWithSlug(actor, id);
    return this.toView(site, await this.liveContainers(site, site.tenant.slug));
  }

  /**
   * One site, its containers read from the Docker Engine only if asked for: GraphQL resolves
   * `containers` through {@link liveContainersOf}, so `site(id) { status }` costs one query.
   */
  async getLazily(actor: Principal, id: string): Promise<SiteView> {
    const site = await this.getRowWithSlug(actor, id);
    let live: Promise<ContainerView[]> | undefined;
    const load = () => (live ??= this.liveContainers(site, site.tenant.slug));
    return Object.defineProperty(this.toView(site), LIVE, { value: load, enumerable: false });
  }

  /** The live containers of a view made by {@link getLazily}; null for views of lists. */
  liveContainersOf(view: SiteView): Promise<ContainerView[]> | null {
    return (view as SiteView & { [LIVE]?: () => Promise<ContainerView[]> })[LIVE]?.() ?? null;
  }

  /** Like REST's: the larger of the recorded count and Docker's, for single-site views. */
  async restartCountOf(view: SiteView): Promise<number> {
    const live = await this.liveContainersOf(view);
    return Math.max(view.restartCount, live?.find((c) => c.role === 'wordpress')?.restartCount ?? 0);
  }

  /**
   * The site with what its view needs of its tenant and primary domain, in one query: the
   * read behind every `GET /v1/sites/{id}` and `site(id)`, so it skips Prisma's client
   * ({@link PrismaService.hotRead}); `VIEW_INCLUDE` through Prisma reads the same.
   */
  private async getRowWithSlug(actor: Principal, id: string): Promise<SiteWithSlug> {
    const [row] = isUuid(id) ? await this.prisma.hotRead<SiteViewRow>('berth_site_view', SITE_VIEW_SQL, [id]) : [];
    if (!row || !canSeeTenant(actor, row.tenantId)) throw new BerthError(ErrorCode.SITE_NOT_FOUND, `Site ${id} was not found`);
    const { tenantSlug, tenantContactEmail, primaryHostname, ...site } = row;
    return {
      ...site,
      tenant: { slug: tenantSlug, contactEmail: tenantContactEmail },
      domains: primaryHostname ? [{ hostname: primaryHostname }] : [],
    };
  }

  /** The site's containers as the Docker Engine reports them (through its event-invalidated cache). */
  async liveContainers(site: Site, tenantSlug: string): Promise<ContainerView[]> {
    if (site.status === SiteStatus.DELETED) return [];
    const wanted = [
      { name: names.wpContainer(this.config.BERTH_INSTANCE, tenantSlug, site.name), role: 'wordpress', siteId: site.id },
      { name: names.dbContainer(this.config.BERTH_INSTANCE, tenantSlug), role: 'db', siteId: undefined },
    ];
    return Promise.all(
      wanted.map(async ({ name, role, siteId }) => {
        const info = await this.containers.inspect(name);
        if (!info || !this.ours(info.Config.Labels, siteId)) {
          return { name, role, id: null, state: 'missing', health: null, restartCount: 0, startedAt: null };
        }
        return {
          name,
          role,
          id: info.Id,
          state: info.State.Status,
          health: info.State.Health?.Status ?? null,
          restartCount: info.RestartCount,
          startedAt: info.State.Running ? info.State.StartedAt : null,
        };
      }),
    );
  }

  /**
   * Changes a site's settings; a job replaces its WordPress container (volume and database
   * stay) and rolls back to the previous settings if the new container does not answer.
   */
  async update(actor: Principal, id: string, input: UpdateSiteInput): Promise<{ job: JobView }> {
    assertCanWrite(actor);
    const env = input.env === undefined ? undefined : validateSiteEnv(input.env);
    const job = await this.prisma.$transaction(async (tx) => {
      const site = await lockSiteRow(tx, actor, id);
      if (site.status === SiteStatus.DELETED || site.desiredState === DesiredState.ABSENT)
        throw new BerthError(ErrorCode.SITE_DELETED, `Site ${site.name} is deleted or being deleted`);
      await refuseUnfinishedClone(tx, site);
      const tenant = await tx.tenant.findUniqueOrThrow({ where: { id: site.tenantId } });
      const { memoryMb, cpus } = input.resources ?? {};
      if (memoryMb && memoryMb > tenant.maxMemoryMb)
        throw new BerthError(
          ErrorCode.QUOTA_EXCEEDED,
          `resources.memoryMb ${memoryMb} is over the tenant's limit of ${tenant.maxMemoryMb}`,
        );
      if (cpus && cpus > tenant.maxCpus)
        throw new BerthError(ErrorCode.QUOTA_EXCEEDED, `resources.cpus ${cpus} is over the tenant's limit of ${tenant.maxCpus}`);
      const previous = Object.fromEntries(UPDATABLE.map((k) => [k, site[k]]));
      const next = {
        ...(env !== undefined ? { env } : {}),
        ...(input.restartPolicy !== undefined ? { restartPolicy: input.restartPolicy } : {}),
        ...(memoryMb !== undefined ? { memoryMb } : {}),
        ...(cpus !== undefined ? { cpus } : {}),
        ...(input.imageTag !== undefined ? { imageTag: input.imageTag } : {}),
      };
      const generation = site.generation + 1;
      await tx.site.update({ where: { id: site.id }, data: { ...next, generation } });
      const created = await tx.job.create({
        data: { tenantId: site.tenantId, siteId: site.id, kind: JobKind.UPDATE, generation, params: { previous } as Prisma.InputJsonValue },
      });
      await this.eventLog.record(
        {
          tenantId: site.tenantId,
          siteId: site.id,
          type: 'site.update.requested',
          message: `update of site ${site.name} requested: ${Object.keys(next).join(', ') || 'nothing'}`,
          data: { jobId: created.id, fields: Object.keys(next) },
          actorKeyId: actor.keyId,
        },
        tx,
      );
      return created;
    });
    await this.jobs.enqueue(job);
    return { job: toJobView(job) };
  }

  /** start, stop, restart and delete: record the desired state, then let a job apply it. */
  async act(actor: Principal, id: string, action: SiteAction): Promise<{ job: JobView }> {
    assertCanWrite(actor);
    const { kind, desired } = ACTIONS[action];
    const job = await this.prisma.$transaction(async (tx) => {
      const site = await lockSiteRow(tx, actor, id);
      if (site.status === SiteStatus.DELETED || (site.desiredState === DesiredState.ABSENT && action !== 'delete')) {
        throw new BerthError(ErrorCode.SITE_DELETED, `Site ${site.name} is deleted or being deleted`);
      }
      if (action !== 'delete') await refuseUnfinishedClone(tx, site);
      const generation = site.generation + 1;
      await tx.site.update({
        where: { id: site.id },
        data: { desiredState: desired, generation, ...(action === 'delete' ? { status: SiteStatus.DELETING } : {}) },
      });
      const created = await tx.job.create({
        data: {
          tenantId: site.tenantId,
          siteId: site.id,
          kind,
          generation,
          params: { previousDesired: site.desiredState, previousStatus: site.status },
        },
      });
      await this.eventLog.record(
        {
          tenantId: site.tenantId,
          siteId: site.id,
          type: `site.${action}.requested`,
          message: `${action} of site ${site.name} requested`,
          data: { jobId: created.id },
          actorKeyId: actor.keyId,
        },
        tx,
      );
      return created;
    });
    await this.jobs.enqueue(job);
    return { job: toJobView(job) };
  }

  async logs(actor: Principal, id: string, opts: { tail: number; follow: boolean }): Promise<Readable> {
    const site = await this.getRow(actor, id);
    const tenant = await this.prisma.tenant.findUniqueOrThrow({ where: { id: site.tenantId }, select: { slug: true } });
    const name = names.wpContainer(this.config.BERTH_INSTANCE, tenant.slug, site.name);
    if (this.config.BERTH_ENGINE === 'swarm') return this.serviceLogs(site, name, opts);
    const found = site.status === SiteStatus.DELETED ? undefined : await this.docker.inspectContainer(name);
    const info = found && this.ours(found.Config.Labels, site.id) ? found : undefined;
    if (!info) throw new BerthError(ErrorCode.NOT_FOUND, `Site ${site.name} has no container to read logs from`);
    try {
      return await this.docker.logs(info.Id, opts);
    } catch (e) {
      // Removed, or being removed, since it was inspected (a delete or a replacement in flight).
      if (isConflict(e) || isNotFound(e))
        throw new BerthError(ErrorCode.NOT_FOUND, `Site ${site.name}'s container is being removed or replaced; no logs to read now`);
      throw e;
    }
  }

  /** On a Swarm: the WordPress service's log, through the manager (whatever node its task is on). */
  private async serviceLogs(site: { id: string; name: string; status: SiteStatus }, name: string, opts: { tail: number; follow: boolean }) {
    const service = site.status === SiteStatus.DELETED ? undefined : await this.docker.inspectService(name);
    if (!service || !this.ours(service.Spec?.Labels, site.id))
      throw new BerthError(ErrorCode.NOT_FOUND, `Site ${site.name} has no service to read logs from`);
    try {
      return await this.docker.serviceLogs(service.ID, opts);
    } catch (e) {
      if (isNotFound(e)) throw new BerthError(ErrorCode.NOT_FOUND, `Site ${site.name}'s service is being removed; no logs to read now`);
      throw e;
    }
  }

  /**
   * Another instance's container under this instance's name is never shown as the site's, nor,
   * given `siteId`, another site's: names carry the tenant's slug and the site's name, both
   * free again once deleted, so a deleted namesake's leftover (say on a node that was down, or
   * a deleted tenant's whose slug was taken again) is never shown, nor its logs read.
   */
  private ours(labels: Record<string, string> | undefined, siteId?: string): boolean {
    return (
      labels?.[LABEL.managedBy] === MANAGED_BY &&
      labels[LABEL.instance] === this.config.BERTH_INSTANCE &&
      (siteId === undefined || labels[LABEL.siteId] === siteId)
    );
  }

  async events(actor: Principal, id: string, page: { limit: number }) {
    const site = await this.getRow(actor, id);
    return this.eventLog.list({ siteId: site.id }, page);
  }

  /** Live updates of a site the actor may see: each message is the site's id. */
  async watch(actor: Principal, id: string): Promise<AsyncIterableIterator<{ id: string }>> {
    await this.getRow(actor, id);
    return this.redis.subscribe<{ id: string }>(siteChannel(id));
  }
}
