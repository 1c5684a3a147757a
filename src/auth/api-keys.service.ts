import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import { ApiKeyRole, TenantStatus } from '../generated/prisma/enums';
import type { ApiKey } from '../generated/prisma/client';

import { randomToken, sha256 } from '../common/crypto';
import { BerthError, ErrorCode } from '../common/errors';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { EventsService } from '../events/events.service';
import { RevocationsService } from '../revocations/revocations.service';
import { isUuid } from '../common/ids';
import { assertCanWrite, canSeeTenant, isAdmin, type Principal } from '../common/principal';
import { type ApiKeyView } from './dto/api-key.dto';

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

/** Keys remembered per process at most (a bound, not a tuning knob). */
const CACHE_MAX = 10_000;

interface Remembered {
  principal: Principal;
  until: number;
  lastUsedWrite: number;
}

@Injectable()
export class ApiKeysService implements OnModuleInit {
  private readonly logger = new Logger('ApiKeys');
  /**
   * Authenticated keys by hash, for BERTH_AUTH_CACHE_MS: most requests then cost no query.
   * A revocation drops the key here at once and, through Redis, in every other process;
   * the expiry bounds how long a revocation could go unseen if that message were lost.
   */
  private readonly remembered = new Map<string, Remembered>();

  constructor(
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    private readonly revocations: RevocationsService,
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
  ) {}

  onModuleInit(): void {
    this.revocations.onRevoked((keyId) => this.forget(keyId));
  }

  /** Bumped by every revocation, so a lookup that raced one is not remembered. */
  private revocationCount = 0;

  private forget(keyId: string): void {
    this.revocationCount += 1;
    for (const [hash, r] of this.remembered) if (r.principal.keyId === keyId) this.remembered.delete(hash);
  }

  /** Resolves a bearer token to a principal, or throws UNAUTHENTICATED. */
  async authenticate(token: string | undefined): Promise<Principal> {
    if (!token || !token.startsWith(KEY_PREFIX) || token.length > 200) {
      throw new BerthError(ErrorCode.UNAUTHENTICATED, 'Send a valid API key as "Authorization: Bearer <key>"');
    }
    const hash = sha256(token);
    const now = Date.now();
    const hit = this.remembered.get(hash);
    if (hit && hit.until > now) {
      if (now - hit.lastUsedWrite > LAST_USED_RESOLUTION_MS) {
        hit.lastUsedWrite = now;
        this.touch(hit.principal.keyId);
      }
      return hit.principal;
    }
    const revocationsBefore = this.revocationCount;
    const key = await this.prisma.apiKey.findUnique({ where: { hash } });
    if (!key || key.revokedAt) {
      this.remembered.delete(hash);
      throw new BerthError(ErrorCode.UNAUTHENTICATED, 'This API key is unknown or revoked');
    }
    let lastUsedWrite = key.lastUsedAt?.getTime() ?? 0;
    if (now - lastUsedWrite > LAST_USED_RESOLUTION_MS) {
      lastUsedWrite = now;
      this.touch(key.id);
    }
    const principal: Principal = { keyId: key.id, role: key.role, tenantId: key.tenantId };
    if (this.config.BERTH_AUTH_CACHE_MS && this.revocationCount === revocationsBefore) {
      if (this.remembered.size >= CACHE_MAX) this.remembered.delete(this.remembered.keys().next().value!);
      this.remembered.set(hash, { principal, until: now + this.config.BERTH_AUTH_CACHE_MS, lastUsedWrite });
    }
    return principal;
  }

  /** Best effort, at most once a minute per key and process: never slows or fails the request. */
  private touch(keyId: string): void {
    this.prisma.apiKey.update({ where: { id: keyId }, data: { lastUsedAt: new Date() } }).catch(() => undefined);
  }

  async create(actor: Principal, tenantId: string, role: ApiKeyRole = ApiKeyRole.TENANT, name?: string): Promise<IssuedKey> {
    assertCanWrite(actor);
    if (!isUuid(tenantId) || !canSeeTenant(actor, tenantId))
      throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${tenantId} was not found`);
    if (role === ApiKeyRole.ADMIN) throw new BerthError(ErrorCode.VALIDATION_FAILED, 'Tenant keys cannot have the ADMIN role');
    const tenant = await this.prisma.tenant.findUnique({ where: { id: tenantId }, select: { id: true, status: true } });
    if (!tenant) throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${tenantId} was not found`);
    if (tenant.status === TenantStatus.DELETING) throw new BerthError(ErrorCode.TENANT_DELETING, `Tenant ${tenantId} is being deleted`);
    const key = KEY_PREFIX + randomToken(32);
    const row = await this.prisma.apiKey.create({
      data: { tenantId, role, name, prefix: key.slice(0, 12), hash: sha256(key) },
    });
    await this.events.record({
      tenantId,
      type: 'api_key.created',
      message: `API key ${row.prefix}… created`,
      data: { apiKeyId: row.id, role },
      actorKeyId: actor.keyId,
    });
    return { id: row.id, key, role, tenantId };
  }

  async list(actor: Principal, tenantId: string) {
    if (!isUuid(tenantId) || !canSeeTenant(actor, tenantId))
      throw new BerthError(ErrorCode.TENANT_NOT_FOUND, `Tenant ${tenantId} was not found`);
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
    await this.revocations.announce(id);
    await this.events.record({
      tenantId: key.tenantId,
      type: 'api_key.revoked',
      message: `API key ${key.prefix}… revoked`,
      data: { apiKeyId: id },
      actorKeyId: actor.keyId,
    });
    return toApiKeyView(revoked);
  }

  /** Revokes every key of a tenant being deleted, here and (through Redis) in every other process. */
  async revokeAllOf(tenantId: string, actorKeyId: string): Promise<number> {
    const keys = await this.prisma.apiKey.findMany({ where: { tenantId, revokedAt: null }, select: { id: true } });
    if (keys.length === 0) return 0;
    const ids = keys.map((k) => k.id);
    await this.prisma.apiKey.updateMany({ where: { id: { in: ids }, revokedAt: null }, data: { revokedAt: new Date() } });
    for (const id of ids) await this.revocations.announce(id);
    await this.events.record({
      tenantId,
      type: 'api_key.revoked',
      message: `${ids.length} API key(s) revoked with the tenant`,
      data: { apiKeyIds: ids },
      actorKeyId,
    });
    return ids.length;
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
      await tx.apiKey.create({
        data: { role: ApiKeyRole.ADMIN, name: 'generated admin key', prefix: key.slice(0, 12), hash: sha256(key) },
      });
      this.logger.warn('No admin key existed: one was generated and is shown once below.');
      return key;
    });
  }
}
