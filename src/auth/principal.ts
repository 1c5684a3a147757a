import { ApiKeyRole } from '../generated/prisma/enums';
import { BerthError, ErrorCode } from '../common/errors';

/** Who is calling: resolved from the API key on every request. */
export interface Principal {
  keyId: string;
  role: ApiKeyRole;
  /** null for admin keys. */
  tenantId: string | null;
}

export const isAdmin = (p: Principal) => p.role === ApiKeyRole.ADMIN;

export function assertAdmin(p: Principal): void {
  if (!isAdmin(p)) throw new BerthError(ErrorCode.FORBIDDEN, 'This operation needs an admin key');
}

export function assertCanWrite(p: Principal): void {
  if (p.role === ApiKeyRole.TENANT_READONLY) {
    throw new BerthError(ErrorCode.FORBIDDEN, 'This key is read-only');
  }
}

/** Admins see every tenant; tenant keys see only their own. */
export function canSeeTenant(p: Principal, tenantId: string): boolean {
  return isAdmin(p) || p.tenantId === tenantId;
}

/** The tenant filter to apply to a query made by p (undefined: no filter). */
export function tenantScope(p: Principal): string | undefined {
  return isAdmin(p) ? undefined : (p.tenantId ?? '00000000-0000-0000-0000-000000000000');
}
