import { Inject, Injectable } from '@nestjs/common';
import { BerthError, ErrorCode } from '../common/errors';
import { assertCanWrite, type Principal } from '../common/principal';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { PrismaService } from '../database/prisma.service';
import { JobsService } from '../jobs/jobs.service';
import { EdgeService } from '../edge/edge.service';
import { EventsService } from '../events/events.service';
import { Prisma, type Domain, type Site } from '../generated/prisma/client';
import { SiteStatus } from '../generated/prisma/enums';
import { SitesService } from '../sites/sites.service';
import type { AddDomainInput, DomainView } from './dto/domain.dto';
import { challengeName, parseServers, txtHolds } from './dns-check';
import { checkHostname } from './hostname';
import { randomToken } from '../common/crypto';

const toView = (d: Domain): DomainView => ({
  id: d.id,
  siteId: d.siteId,
  hostname: d.hostname,
  primary: d.primary,
  status: d.verifiedAt ? 'ACTIVE' : 'PENDING',
  verification: d.verifiedAt || !d.verificationToken ? null : { type: 'TXT', name: challengeName(d.hostname), value: d.verificationToken },
  createdAt: d.createdAt,
});

/**
 * A site's custom domains. Each hostname belongs to one site across all tenants; one of a
 * site's domains may be primary (the site answers there and every other hostname of it,
 * the platform hostname included, redirects there). The edge follows at once. With
 * BERTH_DOMAIN_VERIFICATION=dns a domain is PENDING, and not routed, until its owner shows
 * control of it with a TXT record (checked every BERTH_DOMAIN_CHECK_MS, and on request).
 */
@Injectable()
export class DomainsService {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly prisma: PrismaService,
    private readonly sites: SitesService,
    private readonly events: EventsService,
    private readonly edge: EdgeService,
    private readonly jobs: JobsService,
  ) {}

  /**
   * The site's public URL changed (a primary domain came or went): its job moves WordPress
   * there (home, siteurl and the URLs in its content). A job of the site already under way
   * may have read the old URL, so the reconciler catches any site left behind as well.
   */
  private async primaryChanged(siteId: string, what: string): Promise<void> {
    const site = await this.prisma.site.findUnique({ where: { id: siteId } });
    if (!site || site.desiredState !== 'RUNNING' || site.status === SiteStatus.DELETED) return;
    await this.jobs.repair(site, what);
  }

  async list(actor: Principal, siteId: string): Promise<DomainView[]> {
    const site = await this.sites.getRow(actor, siteId);
    const rows = await this.prisma.domain.findMany({ where: { siteId: site.id }, orderBy: [{ primary: 'desc' }, { createdAt: 'asc' }] });
    return rows.map(toView);
  }

  /** The hostnames a request names (and its www. variant), checked; a coded error when one is not valid. */
  checked(input: Pick<AddDomainInput, 'hostname' | 'www'>, field = 'hostname'): { hostname: string; www?: string } {
    const checked = checkHostname(input.hostname, { baseDomain: this.config.BERTH_BASE_DOMAIN });
    if (!checked.ok)
      throw new BerthError(ErrorCode.VALIDATION_FAILED, `${field} ${checked.reason}`, { fields: [`${field} ${checked.reason}`] });
    const www = input.www ? checkHostname(`www.${checked.hostname}`, { baseDomain: this.config.BERTH_BASE_DOMAIN }) : undefined;
    if (www && !www.ok) throw new BerthError(ErrorCode.VALIDATION_FAILED, `www.${checked.hostname} ${www.reason}`);
    return { hostname: checked.hostname, ...(www?.ok ? { www: www.hostname } : {}) };
  }

  /** The answer when a hostname is another site's: the same whoever holds it (another tenant's is not revealed as theirs). */
  taken(names: { hostname: string; www?: string }): BerthError {
    return new BerthError(ErrorCode.DOMAIN_TAKEN, `${names.hostname}${names.www ? ` or ${names.www}` : ''} is already in use by a site`);
  }

  /**
   * Records the domain (and its www. variant) on the site, in the caller's transaction, which
   * holds the site's row: one writer per site at a time, so two requests cannot both make a
   * primary. The edge routes it at its next pass.
   */
  async insert(
    tx: Prisma.TransactionClient,
    site: Pick<Site, 'id' | 'tenantId' | 'name'>,
    names: { hostname: string; www?: string },
    primary: boolean,
    actorKeyId?: string,
  ): Promise<Domain> {
    const hostnames = [names.hostname, ...(names.www ? [names.www] : [])];
    await this.lockHostnames(tx, hostnames);
    // Taken: verified for any site, or claimed by this one already. Another site's pending claim
    // blocks nobody: whoever shows ownership first gets the hostname (a squatter's claim would
    // otherwise keep its owner out for good).
    const used = await tx.domain.count({
      where: { OR: [{ verifiedHostname: { in: hostnames } }, { siteId: site.id, hostname: { in: hostnames } }] },
    });
    if (used > 0) throw this.taken(names);
    if (primary) await tx.domain.updateMany({ where: { siteId: site.id, primary: true }, data: { primary: false } });
    const created = await tx.domain.create({
      data: { siteId: site.id, tenantId: site.tenantId, hostname: names.hostname, primary, ...this.verification(names.hostname) },
    });
    // The www. variant is a domain of its own (unique like any hostname) that redirects to the primary.
    if (names.www)
      await tx.domain.create({ data: { siteId: site.id, tenantId: site.tenantId, hostname: names.www, ...this.verification(names.www) } });
    if (created.verifiedAt) await this.releaseClaims(tx, site.id, hostnames);
    await this.events.record(
      {
        tenantId: site.tenantId,
        siteId: site.id,
        type: 'domain.added',
        message: `Domain ${created.hostname}${names.www ? ` (and ${names.www})` : ''} added to site ${site.name}${primary ? ' as its primary' : ''}`,
        data: { hostname: created.hostname, primary, ...(names.www ? { www: names.www } : {}) },
        ...(actorKeyId ? { actorKeyId } : {}),
      },
      tx,
    );
    return created;
  }

  async add(actor: Principal, siteId: string, input: AddDomainInput): Promise<DomainView> {
    assertCanWrite(actor);
    const names = this.checked(input);
    const site = await this.sites.getRow(actor, siteId);
    if (site.status === SiteStatus.DELETED || site.desiredState === 'ABSENT')
      throw new BerthError(ErrorCode.SITE_DELETED, `Site ${site.id} is deleted`);
    let domain: Domain;
    try {
      domain = await this.prisma.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT id FROM "Site" WHERE id = ${site.id}::uuid FOR UPDATE`;
        return this.insert(tx, site, names, !!input.primary, actor.keyId);
      });
    } catch (e) {
      // Lost a race with another request for the same hostname.
      if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') throw this.taken(names);
      throw e;
    }
    this.edge.soon(0);
    // A new primary changes the public URL at once when it is verified, and also when it is
    // not: the previous primary is demoted, so the platform hostname serves until it is.
    if (domain.primary)
      await this.primaryChanged(
        site.id,
        domain.verifiedAt ? `its primary domain is now ${domain.hostname}` : `its primary domain ${domain.hostname} awaits verification`,
      );
    return toView(domain);
  }

  /** A new domain's verification: a token to publish, or verified at once. */
  private verification(hostname: string): Pick<Domain, 'verificationToken' | 'verifiedAt' | 'verifiedHostname'> {
    return this.config.BERTH_DOMAIN_VERIFICATION === 'dns'
      ? { verificationToken: randomToken(24), verifiedAt: null, verifiedHostname: null }
      : { verificationToken: null, verifiedAt: new Date(), verifiedHostname: hostname };
  }

  /**
   * Claims of a hostname and its verification, one at a time (until the transaction ends):
   * a claim made while another site's is verified would otherwise stay pending for good, and
   * two verifications at once would deadlock on each other's rows.
   */
  private async lockHostnames(tx: Prisma.TransactionClient, hostnames: string[]): Promise<void> {
    for (const h of [...hostnames].sort()) await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`berth-domain:${h}`}))`;
  }

  /**
   * Once `hostnames` are verified for site `winner`, other sites' pending claims on them can
   * never be: they are removed, and their tenants told.
   */
  private async releaseClaims(tx: Prisma.TransactionClient, winner: string, hostnames: string[]): Promise<void> {
    const losers = await tx.domain.findMany({
      where: { hostname: { in: hostnames }, verifiedAt: null, siteId: { not: winner } },
      include: { site: { select: { name: true } } },
    });
    if (losers.length === 0) return;
    await tx.domain.deleteMany({ where: { id: { in: losers.map((d) => d.id) } } });
    for (const d of losers)
      await this.events.record(
        {
          tenantId: d.tenantId,
          siteId: d.siteId,
          type: 'domain.released',
          message: `Domain ${d.hostname} was removed from site ${d.site.name}: another site showed ownership of it first`,
          data: { hostname: d.hostname },
        },
        tx,
      );
  }

  /** Checks a pending domain's TXT record now; answers with the domain as it is afterwards. */
  async verify(actor: Principal, siteId: string, hostname: string): Promise<DomainView> {
    assertCanWrite(actor);
    const { domain } = await this.find(actor, siteId, hostname);
    return toView(domain.verifiedAt ? domain : ((await this.check(domain)) ?? domain));
  }

  /**
   * Checks pending domains of live sites, oldest first; each whose TXT record holds its token
   * becomes ACTIVE (an event says so) and the edge routes it. Returns how many did.
   */
  async checkPending(limit = 200): Promise<number> {
    const pending = await this.prisma.domain.findMany({
      where: { verifiedAt: null, verificationToken: { not: null }, site: { status: { not: SiteStatus.DELETED } } },
      orderBy: { createdAt: 'asc' },
      take: limit,
    });
    let verified = 0;
    for (const d of pending) if (await this.check(d)) verified++;
    return verified;
  }

  private async check(domain: Domain): Promise<Domain | undefined> {
    if (!domain.verificationToken) return undefined;
    if (!(await txtHolds(challengeName(domain.hostname), domain.verificationToken, parseServers(this.config.BERTH_DNS_SERVERS))))
      return undefined;
    let done: { count: number };
    try {
      done = await this.prisma.$transaction(async (tx) => {
        await this.lockHostnames(tx, [domain.hostname]);
        const verified = await tx.domain.updateMany({
          where: { id: domain.id, verifiedAt: null },
          data: { verifiedAt: new Date(), verifiedHostname: domain.hostname },
        });
        if (verified.count === 1) await this.releaseClaims(tx, domain.siteId, [domain.hostname]);
        return verified;
      });
    } catch (e) {
      // Another site has the hostname verified (added while verification was off): this
      // claim stays pending, as the answer shows.
      if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') return undefined;
      throw e;
    }
    const now = await this.prisma.domain.findUnique({ where: { id: domain.id } });
    if (done.count === 1 && now) {
      await this.events.record({
        tenantId: now.tenantId,
        siteId: now.siteId,
        type: 'domain.verified',
        message: `Domain ${now.hostname} verified (its TXT record holds the token): it is routed now`,
        data: { hostname: now.hostname },
      });
      this.edge.soon(0);
      if (now.primary) await this.primaryChanged(now.siteId, `its primary domain ${now.hostname} was verified`);
    }
    return now ?? undefined;
  }

  /** The site's domain `hostname`, if the actor may see the site. */
  private async find(actor: Principal, siteId: string, hostname: string): Promise<{ site: Site; domain: Domain }> {
    const site = await this.sites.getRow(actor, siteId);
    const checked = checkHostname(hostname, { baseDomain: this.config.BERTH_BASE_DOMAIN });
    const domain = checked.ok ? await this.prisma.domain.findFirst({ where: { siteId: site.id, hostname: checked.hostname } }) : null;
    if (!domain) throw new BerthError(ErrorCode.DOMAIN_NOT_FOUND, `Site ${site.id} has no domain ${hostname}`);
    return { site, domain };
  }

  async remove(actor: Principal, siteId: string, hostname: string): Promise<DomainView> {
    assertCanWrite(actor);
    const { site, domain } = await this.find(actor, siteId, hostname);
    await this.prisma.$transaction(async (tx) => {
      await tx.domain.delete({ where: { id: domain.id } });
      await this.events.record(
        {
          tenantId: site.tenantId,
          siteId: site.id,
          type: 'domain.removed',
          message: `Domain ${domain.hostname} removed from site ${site.name}`,
          data: { hostname: domain.hostname },
          actorKeyId: actor.keyId,
        },
        tx,
      );
    });
    this.edge.soon(0);
    if (domain.primary && domain.verifiedAt) await this.primaryChanged(site.id, `its primary domain ${domain.hostname} was removed`);
    return toView(domain);
  }
}
