import { LABEL } from '../docker/plan.types';

/** What decides whether an object of Berth's is claimed (not an orphan). */
export interface ClaimFacts {
  /** The sites not deleted, by id. */
  liveSites: Set<string>;
  /** Every tenant, by slug. */
  tenants: Map<string, { id: string; nodeId: string | null; createdAt: Date }>;
  /** The nodes each tenant's objects may be on (its node, those its moves touched), by tenant id; for objects on a node. */
  tenantNodes?: Map<string, Set<string>>;
}

/** An object as orphan collection sees it. */
export interface ClaimedObject {
  labels: Record<string, string> | null | undefined;
  /** The Swarm node it is on, for what lives on one node (a volume). */
  nodeId?: string;
  /** When the engine made it (RFC 3339), where known. */
  createdAt?: string;
}

/**
 * How far a node's clock may be behind the database's: a volume made up to this long before
 * its tenant (by the two clocks) still counts as made since. It only matters on a node outside
 * the tenant's own, so a skew beyond it costs only there.
 */
export const CLOCK_MARGIN_MS = 10_000;

/**
 * Whether an object is claimed: a site's by its live site (by id, wherever it is); a
 * tenant's by the tenant of its slug. Objects carry the slug, and a deleted tenant's slug may
 * be taken again, so on a Swarm node a tenant claims what is under its slug there only where
 * its objects are or may be: its node, the nodes its moves touched, or any node for what was
 * made since the tenant was (its own, on a node that rejoined the Swarm under a new id).
 * What was made there before the tenant existed is a deleted tenant's of the same slug (left
 * on a node that was down when it was deleted): not claimed, so it is collected, and never
 * handed to the new tenant. A tenant with no node (made before Berth ran on a Swarm) claims
 * by slug alone, as everything does on one engine.
 */
export function claimed(o: ClaimedObject, facts: ClaimFacts): boolean {
  const siteId = o.labels?.[LABEL.siteId];
  if (siteId) return facts.liveSites.has(siteId);
  const tenant = facts.tenants.get(o.labels?.[LABEL.tenant] ?? '');
  if (!tenant) return false;
  if (!o.nodeId || !tenant.nodeId || facts.tenantNodes?.get(tenant.id)?.has(o.nodeId)) return true;
  const made = o.createdAt ? Date.parse(o.createdAt) : NaN;
  // Unknown: claimed (never removed on a guess).
  return !(made < tenant.createdAt.getTime() - CLOCK_MARGIN_MS);
}
