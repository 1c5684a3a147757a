import { ApiKeyRole } from '../generated/prisma/enums';
import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';
import { GqlExecutionContext } from '@nestjs/graphql';
import { BerthError, ErrorCode } from './errors';

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

export const PUBLIC = 'berth:public';
/** Marks a route that needs no API key; the OpenAPI document says so (security: []) from the same mark. */
export const Public = () => applyDecorators(SetMetadata(PUBLIC, true), ApiExtension(PUBLIC_EXTENSION, true));
/** The OpenAPI extension Public() sets; src/app/openapi.ts turns it into an empty security requirement. */
export const PUBLIC_EXTENSION = 'x-berth-public';

export interface WithPrincipal {
  headers?: Record<string, string | string[] | undefined>;
  principal?: Principal;
  /** Seconds to wait (0: go ahead), decided once per request or graphql-ws operation. */
  retryAfter?: number;
}

/** The object that carries the principal for REST requests and GraphQL operations alike. */
export function carrier(ctx: ExecutionContext): WithPrincipal {
  if (ctx.getType<string>() === 'graphql') {
    const gql = GqlExecutionContext.create(ctx).getContext<{ req?: WithPrincipal; principal?: Principal }>();
    // Subscriptions authenticate once, at connection time (see app.module.ts), and carry
    // the principal on the context itself.
    if (gql.principal) return gql as WithPrincipal;
    return gql.req ?? (gql as WithPrincipal);
  }
  return ctx.switchToHttp().getRequest<WithPrincipal>();
}

/** Injects the authenticated principal into a controller or resolver method. */
export const Actor = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const principal = carrier(ctx).principal;
  if (!principal) throw new Error('Actor used on a public route');
  return principal;
});
