import { DesiredState, SiteStatus } from '../generated/prisma/enums';

/** The drift a fleet-wide configuration change causes: repaired as a bounded rollout. */
export const SETTINGS_DIFFER = 'WordPress container settings differ from the plan';

/** What the reconciler knows of a site's objects on the engine. */
export interface Observed {
  wordpress?: { state: string; specHash?: string };
  dbRunning: boolean;
  networkExists: boolean;
}

/**
 * Why a site (with no job in flight) is not in its desired state, or undefined when it is.
 * Pure, so the rules are unit-tested; FAILED sites are left for their owner to act on.
 */
export function driftOf(
  site: { status: SiteStatus; desiredState: DesiredState },
  expectedHash: string | undefined,
  seen: Observed,
): string | undefined {
  if (site.status === SiteStatus.FAILED || site.status === SiteStatus.DELETED) return undefined;
  if (site.desiredState === DesiredState.ABSENT) return 'deletion was not finished';
  if (!seen.networkExists) return 'tenant network is missing';
  if (!seen.dbRunning) return 'tenant database server is not running';
  const wp = seen.wordpress;
  if (!wp) return 'WordPress container is missing';
  if (expectedHash && wp.specHash !== expectedHash) return SETTINGS_DIFFER;
  if (site.desiredState === DesiredState.RUNNING && wp.state !== 'running') return `WordPress container is ${wp.state}, should be running`;
  if (site.desiredState === DesiredState.STOPPED && wp.state === 'running') return 'WordPress container is running, should be stopped';
  const settled = site.desiredState === DesiredState.RUNNING ? SiteStatus.RUNNING : SiteStatus.STOPPED;
  if (site.status !== settled) return `site is ${site.status} with no job to finish it`;
  return undefined;
}
