import type { Prisma } from '../generated/prisma/client';

/** What `tenantNodes` reads with: a transaction or the client. */
interface RawQuery {
  $queryRaw<T = unknown>(query: TemplateStringsArray, ...values: unknown[]): Prisma.PrismaPromise<T>;
}

/**
 * The nodes a tenant's objects are on, or may still be on: its own node and every node one of
 * its moves left or went to (what a move left there is its until cleared, or kept for good
 * after an evacuation from backups). By tenant id; every tenant, or those named.
 */
export async function tenantNodes(db: RawQuery, tenantIds?: string[]): Promise<Map<string, Set<string>>> {
  const rows = await db.$queryRaw<{ id: string; node: string }[]>`
    SELECT t.id, t."nodeId" AS node FROM "Tenant" t
    WHERE t."nodeId" IS NOT NULL AND (${tenantIds ?? null}::uuid[] IS NULL OR t.id = ANY(${tenantIds ?? null}::uuid[]))
    UNION
    SELECT j."tenantId", n.node FROM "Job" j
      CROSS JOIN LATERAL (VALUES (j.params->>'fromNodeId'), (j.params->>'toNodeId')) AS n(node)
    WHERE j."siteId" IS NULL AND j.kind = 'MOVE_TENANT' AND n.node IS NOT NULL
      AND (${tenantIds ?? null}::uuid[] IS NULL OR j."tenantId" = ANY(${tenantIds ?? null}::uuid[]))`;
  const byTenant = new Map<string, Set<string>>();
  for (const r of rows) byTenant.set(r.id, (byTenant.get(r.id) ?? new Set()).add(r.node));
  return byTenant;
}
