import { Inject, Injectable } from '@nestjs/common';
import { SecretBox, sha256 } from '../common/crypto';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { LABEL, type Plan } from '../docker/plan.types';
import type { Site, Tenant } from '../generated/prisma/client';
import { DesiredState } from '../generated/prisma/enums';
import { imageWithTag, planSite, planTenant, type PlanSettings, type SiteFacts, type TenantFacts } from './site-plan';
import { stableStringify } from '../common/json';
import { wordpressSettings, type InstallRequest } from './wordpress-install';

/** A site's plans: its tenant's shared objects, its own, and the labels that scope its own. */
export interface SitePlans {
  tenant: Plan;
  site: Plan;
  scope: Record<string, string>;
}

/**
 * Turns database rows and the configuration into plans. Jobs get plans with secrets opened
 * (they start servers with them); the reconciler gets the same plans from sealed secrets,
 * whose spec hashes are equal, so an unreadable secret cannot stop it comparing.
 */
@Injectable()
export class SitePlanner {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly box: SecretBox,
  ) {}

  get settings(): PlanSettings {
    const c = this.config;
    return {
      instance: c.BERTH_INSTANCE,
      wordpressImage: c.BERTH_WORDPRESS_IMAGE,
      dbImage: c.BERTH_DB_IMAGE,
      wordpressDataPath: c.BERTH_WORDPRESS_DATA_PATH,
      publishAddress: c.BERTH_PUBLISH_ADDRESS,
      subnetPool: c.BERTH_SUBNET_POOL,
      subnetPrefix: c.BERTH_SUBNET_PREFIX,
      pidsLimit: c.BERTH_PIDS_LIMIT,
      dbMemoryMb: c.BERTH_DB_MEMORY_MB,
      dbCpus: c.BERTH_DB_CPUS,
    };
  }

  /** Names the plan settings: a fleet-wide change (image, limits, address) changes it. */
  get settingsFingerprint(): string {
    return sha256(stableStringify(this.settings)).slice(0, 16);
  }

  /** The tenant as the plan sees it, without decrypting anything: enough to compare. */
  sealedTenantFacts(t: Tenant): TenantFacts {
    return {
      slug: t.slug,
      networkIndex: t.networkIndex,
      dbRootPasswordSealed: t.dbRootPasswordEnc,
      maxMemoryMb: t.maxMemoryMb,
      maxCpus: t.maxCpus,
    };
  }

  /** The tenant with its root password opened, for jobs; throws if it cannot be opened. */
  tenantFacts(t: Tenant): TenantFacts & { dbRootPassword: string } {
    return { ...this.sealedTenantFacts(t), dbRootPassword: this.box.open(t.dbRootPasswordEnc) };
  }

  sealedSiteFacts(s: Site): SiteFacts {
    return {
      id: s.id,
      name: s.name,
      env: s.env as Record<string, string>,
      restartPolicy: s.restartPolicy,
      memoryMb: s.memoryMb,
      cpus: s.cpus,
      dbName: s.dbName,
      dbUser: s.dbUser,
      dbPasswordSealed: s.dbPasswordEnc,
      hostPort: s.hostPort ?? 0,
      image: s.imageTag ? imageWithTag(this.config.BERTH_WORDPRESS_IMAGE, s.imageTag) : undefined,
      running: s.desiredState === DesiredState.RUNNING,
    };
  }

  siteFacts(s: Site): SiteFacts & { dbPassword: string } {
    return { ...this.sealedSiteFacts(s), dbPassword: this.box.open(s.dbPasswordEnc) };
  }

  /** What the install step sends the site's container: its settings (or defaults), the URL, the password if one was given. */
  installRequest(tenant: Tenant, site: Site, url: string): InstallRequest {
    const password = site.adminPasswordSealed ? this.box.open(site.adminPasswordSealed) : undefined;
    return { ...wordpressSettings(site, tenant), url, ...(password ? { password } : {}) };
  }

  /** The labels that mark a site's own objects: apply removes what carries them and the plan lacks. */
  scope(tenant: Tenant, site: Site): Record<string, string> {
    return { [LABEL.instance]: this.config.BERTH_INSTANCE, [LABEL.tenant]: tenant.slug, [LABEL.siteId]: site.id };
  }

  /** The plans a job applies (secrets opened). */
  plans(tenant: Tenant, site: Site): SitePlans {
    const t = this.tenantFacts(tenant);
    return {
      tenant: planTenant(t, this.settings),
      site: planSite(t, this.siteFacts(site), this.settings),
      scope: this.scope(tenant, site),
    };
  }

  /** The tenant's own objects (its network, database server and volume), secrets opened: for a tenant without sites. */
  tenantPlan(tenant: Tenant): Plan {
    return planTenant(this.tenantFacts(tenant), this.settings);
  }

  /**
   * Every object a site and its tenant should have, from sealed secrets: what the engine is
   * compared with. `tenantPlans` keeps each tenant's own plan for its other sites (one
   * reconciler pass: a tenant's row does not change within it).
   */
  expectedPlan(tenant: Tenant, site: Site, tenantPlans?: Map<string, Plan>): Plan {
    const t = this.sealedTenantFacts(tenant);
    const settings = this.settings;
    let shared = tenantPlans?.get(tenant.id);
    if (!shared) {
      shared = planTenant(t, settings);
      tenantPlans?.set(tenant.id, shared);
    }
    const own = planSite(t, this.sealedSiteFacts(site), settings);
    return {
      networks: [...shared.networks, ...own.networks],
      volumes: [...shared.volumes, ...own.volumes],
      containers: [...shared.containers, ...own.containers],
    };
  }
}
