import type { EngineView } from '../docker/plan-drift';
import type { Plan } from '../docker/plan.types';
import type { Site, Tenant } from '../generated/prisma/client';
import { driftOf } from './drift';
import { scheduleRepairs, type RolloutState } from './rollout';

export type SiteWithTenant = Site & { tenant: Tenant; domains?: { hostname: string }[] };

/** What a pass does to one site, behind the reconciler's adapters (faked in unit tests). */
export interface SitePassPorts {
  /** The objects the site and its tenant should have, as the jobs would apply them; may throw for this site alone. */
  expectedPlan(site: SiteWithTenant): Plan;
  /** Where WordPress should answer (its primary domain, or platform hostname, or port). */
  publicUrl(site: SiteWithTenant): string | null;
  /** Enqueues a repair unless a job got there first; true when it did. */
  repair(site: SiteWithTenant, reason: string, rollout: boolean): Promise<boolean>;
  /** Records a problem on the site (its lastError, an event). */
  recordProblem(site: SiteWithTenant, message: string, error: Error): Promise<void>;
  warn(message: string): void;
  /**
   * Whether the site's plan is fully known, so its settings can be compared (by default: it
   * has its host port; on a Swarm, where sites have none, always).
   */
  settingsKnown?(site: SiteWithTenant): boolean;
}

/**
 * Finds each site's drift and enqueues the repairs the rollout allows. A failure for one
 * site (its plan, its repair) is that site's: recorded on it once, and the pass goes on.
 * `retry` holds sites whose rollout repair failed under an earlier configuration.
 */
export async function reconcileSites(
  sites: SiteWithTenant[],
  seen: EngineView,
  rollout: RolloutState,
  ports: SitePassPorts,
  retry: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  const candidates: { site: SiteWithTenant; reason: string; rollout: boolean }[] = [];
  const unchanged = new Map<string, string[]>();
  for (const site of sites) {
    await forSite(site, ports, unchanged, async () => {
      if (retry.has(site.id)) {
        candidates.push({ site, reason: 'its update failed under an earlier configuration; trying again', rollout: true });
        return;
      }
      const drift = driftOf(site, ports.expectedPlan(site), seen, ports.settingsKnown?.(site) ?? !!site.hostPort, ports.publicUrl(site));
      if (drift) candidates.push({ site, ...drift });
    });
  }
  const { now } = scheduleRepairs(candidates, rollout);
  const repaired: string[] = [];
  for (const c of now) {
    await forSite(c.site, ports, unchanged, async () => {
      if (await ports.repair(c.site, c.reason, c.rollout)) repaired.push(c.site.id);
    });
  }
  for (const [message, ids] of unchanged) {
    const some = ids.slice(0, 3).join(', ') + (ids.length > 3 ? ', ...' : '');
    ports.warn(`${ids.length} site(s) still cannot be reconciled, as recorded on them (lastError): ${message} (${some})`);
  }
  return repaired;
}

/**
 * Runs one site's part of a pass; a failure is logged and recorded when it is new, and only
 * counted when it is the one already recorded on the site: a problem that lasts (a pool too
 * small for the tenants, a secret that no longer opens) is one line a pass for each distinct
 * problem, with a few of its sites, not one line a site.
 */
async function forSite(
  site: SiteWithTenant,
  ports: SitePassPorts,
  unchanged: Map<string, string[]>,
  work: () => Promise<void>,
): Promise<void> {
  try {
    await work();
  } catch (e) {
    const message = `reconciler: ${(e as Error).message}`.slice(0, 1000);
    if (site.lastError === message) {
      const ids = unchanged.get(message) ?? [];
      if (!ids.length) unchanged.set(message, ids);
      ids.push(site.id);
      return;
    }
    ports.warn(`site ${site.id}: ${message}`);
    try {
      await ports.recordProblem(site, message, e as Error);
      site.lastError = message;
    } catch (again) {
      ports.warn(`site ${site.id}: could not record its problem: ${(again as Error).message}`);
    }
  }
}
