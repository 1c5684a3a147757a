import type { Plan } from '../docker/plan.types';
import { planDrift, type EngineView } from '../docker/plan-drift';
import { DesiredState, SiteStatus } from '../generated/prisma/enums';

/** Why a site is not in its desired state, and whether repairing it is part of a rollout. */
export interface Drift {
  reason: string;
  /**
   * Only settings differ (a fleet-wide change, such as a new image or limit): the repair
   * replaces running containers, so it rolls out a few sites at a time.
   */
  rollout: boolean;
}

/**
 * Why a site (with no job in flight) is not in its desired state, or undefined when it is:
 * its plan (tenant objects and its own) compared with what the engine has, then its status.
 * `compareSettings` is false for a site whose plan is not fully known yet (no host port).
 * Pure, so the rules are unit-tested; FAILED sites are left for their owner to act on.
 */
export function driftOf(
  site: { status: SiteStatus; desiredState: DesiredState; installedAt?: Date | null; wordpressUrl?: string | null },
  plan: Plan,
  seen: EngineView,
  compareSettings = true,
  /** The site's public URL now (its primary domain may have changed since its last job). */
  publicUrl?: string | null,
): Drift | undefined {
  if (site.status === SiteStatus.FAILED || site.status === SiteStatus.DELETED) return undefined;
  if (site.desiredState === DesiredState.ABSENT) return { reason: 'deletion was not finished', rollout: false };
  const differences = planDrift(plan, seen, compareSettings);
  if (differences.length > 0)
    return { reason: differences.map((d) => d.message).join('; '), rollout: differences.every((d) => d.kind === 'settings') };
  const settled = site.desiredState === DesiredState.RUNNING ? SiteStatus.RUNNING : SiteStatus.STOPPED;
  if (site.status !== settled) return { reason: `site is ${site.status} with no job to finish it`, rollout: false };
  // A running site from before Berth installed WordPress: its job installs it (or finds it
  // installed) and points it at its public URL, a few sites at a time.
  if (site.status === SiteStatus.RUNNING && site.installedAt === null)
    return { reason: 'WordPress was not installed by Berth (a site from before)', rollout: true };
  if (
    site.status === SiteStatus.RUNNING &&
    site.wordpressUrl &&
    publicUrl &&
    new URL(site.wordpressUrl).origin !== new URL(publicUrl).origin
  )
    return { reason: `WordPress is at ${site.wordpressUrl}, its public URL is ${publicUrl}`, rollout: false };
  return undefined;
}
