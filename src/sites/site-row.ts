import { BerthError, ErrorCode } from '../common/errors';
import { isUuid } from '../common/ids';
import { canSeeTenant, type Principal } from '../common/principal';
import type { Prisma, Site } from '../generated/prisma/client';

/** Locks a site's row for the transaction; another tenant's site answers like a missing one. */
export async function lockSiteRow(tx: Prisma.TransactionClient, actor: Principal, id: string): Promise<Site> {
  const [row] = await tx.$queryRaw<
    { id: string }[]
  >`SELECT id FROM "Site" WHERE id = ${isUuid(id) ? id : '00000000-0000-0000-0000-000000000000'}::uuid FOR UPDATE`;
  const site = row ? await tx.site.findUnique({ where: { id: row.id } }) : null;
  if (!site || !canSeeTenant(actor, site.tenantId)) throw new BerthError(ErrorCode.SITE_NOT_FOUND, `Site ${id} was not found`);
  return site;
}
