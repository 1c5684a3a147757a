import { Inject, Injectable, Logger } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import { ApiKeyRole } from '../generated/prisma/enums';
import type { ApiKey } from '../generated/prisma/client';
import type { ApiKeyView } from '../tenants/dto/tenant.dto';
import { randomToken, sha256 } from '../common/crypto';
import { BerthError, ErrorCode } from '../common/errors';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { EventsService } from '../events/events.service';
import { isUuid } from '../tenants/tenants.service';
import { assertCanWrite, canSeeTenant, isAdmin, type Principal } from './principal';

const KEY_PREFIX = 'berth_';
const LAST_USED_RESOLUTION_MS = 60_000;
const BOOTSTRAP_LOCK = 7_220_002;

/** Everything about a key except its hash. */
export function toApiKeyView(k: ApiKey): ApiKeyView {
  const { id, tenantId, role, name, prefix, createdAt, lastUsedAt, revokedAt } = k;
  return { id, tenantId, role, name, prefix, createdAt, lastUsedAt, revokedAt };
}

export interface IssuedKey {
  id: string;
  key: string;
  role: ApiKeyRole;
  tenantId: string | null;
}

@Injectable()
export class ApiKeysService {
  private readonly logger = new Logger('ApiKeys');

  constructor(
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
  ) {}

  /** Resolves a bearer token to a principal, or throws UNAUTHENTICATED. */
  async authenticate(token: string | undefined): Promise<Principal> {
    if (!token || !token.startsWith(KEY_PREFIX) || token.length > 200) {
      throw new BerthError(ErrorCode.UNAUTHENTICATED, 'Send a valid API key as "Authorization: Bearer <key>"');
    }
    const key = await this.prisma.apiKey.findUnique({
      where: { hash: sha256(token) },
      include: { tenant: { select: { status: true } } },
    });
    if (!key || key.revokedAt) throw new BerthError(ErrorCode.UNAUTHENTICATED, 'This API key is unknown or revoked');
    if (!key.lastUsedAt || Date.now() - key.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      // Best effort, at most once a minute per key: never slows or fails the request.
      this.prisma.apiKey.update({ where: { id: key.id }, data: { lastUsedAt: new Date() } }).catch(() => undefined);
    }
    return { keyId: key.id, role: key.role, tenantId: key.tenantId };
  }

  async create(actor: Principal, tenantId: string, role: ApiKeyRole = ApiKeyRole.TENANT, name?: string): Promise<IssuedKey> {
    assertCanWrite(actor);
    if (!isUuid(tenantId) || !canSeeTenant(actor, tenantId)) throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${tenantId} was not found`);
    if (role === ApiKeyRole.ADMIN) throw new BerthError(ErrorCode.VALIDATION_FAILED, 'Tenant keys cannot have the ADMIN role');
    const tenant = await this.prisma.tenant.findUnique({ where: { id: tenantId }, select: { id: true } });
    if (!tenant) throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${tenantId} was not found`);
    const key = KEY_PREFIX + randomToken(32);
    const row = await this.prisma.apiKey.create({
      data: { tenantId, role, name, prefix: key.slice(0, 12), hash: sha256(key) },
    });
    await this.events.record({ tenantId, type: 'api_key.created', message: `API key ${row.prefix}… created`, data: { apiKeyId: row.id, role }, actorKeyId: actor.keyId });
    return { id: row.id, key, role, tenantId };
  }

  async list(actor: Principal, tenantId: string) {
    if (!isUuid(tenantId) || !canSeeTenant(actor, tenantId)) throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${tenantId} was not found`);
    const rows = await this.prisma.apiKey.findMany({ where: { tenantId }, orderBy: { createdAt: 'asc' } });
    return rows.map(toApiKeyView);
  }

  async revoke(actor: Principal, id: string) {
    assertCanWrite(actor);
    const key = isUuid(id) ? await this.prisma.apiKey.findUnique({ where: { id } }) : null;
    if (!key || (!isAdmin(actor) && key.tenantId !== actor.tenantId)) {
      throw new BerthError(ErrorCode.API_KEY_NOT_FOUND, `API key ${id} was not found`);
    }
    if (key.revokedAt) return toApiKeyView(key);
    const revoked = await this.prisma.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
    await this.events.record({ tenantId: key.tenantId, type: 'api_key.revoked', message: `API key ${key.prefix}… revoked`, data: { apiKeyId: id }, actorKeyId: actor.keyId });
    return toApiKeyView(revoked);
  }

  /**
   * Makes sure an admin key exists. BERTH_ADMIN_KEY is registered (hash only); otherwise,
   * on the very first start, a key is generated and returned so the caller can print it once.
   */
  async ensureAdminKey(): Promise<string | undefined> {
    const configured = this.config.BERTH_ADMIN_KEY;
    return this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`;
      if (configured) {
        if (!configured.startsWith(KEY_PREFIX)) {
          throw new Error(`BERTH_ADMIN_KEY: must start with "${KEY_PREFIX}"`);
        }
        const hash = sha256(configured);
        const existing = await tx.apiKey.findUnique({ where: { hash } });
        if (!existing) {
          await tx.apiKey.create({ data: { role: ApiKeyRole.ADMIN, name: 'BERTH_ADMIN_KEY', prefix: configured.slice(0, 12), hash } });
        }
        return undefined;
      }
      const any = await tx.apiKey.findFirst({ where: { role: ApiKeyRole.ADMIN, revokedAt: null } });
      if (any) return undefined;
      const key = KEY_PREFIX + randomToken(32);
      await tx.apiKey.create({ data: { role: ApiKeyRole.ADMIN, name: 'generated admin key', prefix: key.slice(0, 12), hash: sha256(key) } });
      this.logger.warn('No admin key existed: one was generated and is shown once below.');
      return key;
    });
  }
}
