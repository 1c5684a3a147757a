import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { BerthError, ErrorCode } from '../common/errors';
import { RedisService } from '../redis/redis.service';
import { Reflector } from '@nestjs/core';
import { ApiKeysService } from './api-keys.service';
import { carrier, PUBLIC } from '../common/principal';

export function bearer(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const match = value?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1];
}

/** Authenticates every REST route and GraphQL operation; authorisation lives in services. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeysService,
    private readonly redis: RedisService,
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly metrics: MetricsService,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, [ctx.getHandler(), ctx.getClass()])) return true;
    const target = carrier(ctx);
    // graphql-ws operations arrive with the principal of their connection, but count too.
    target.principal ??= await this.keys.authenticate(bearer(target.headers?.authorization));
    const limit = this.config.BERTH_RATE_LIMIT_PER_MINUTE;
    if (target.retryAfter === undefined) {
      const burst = this.config.BERTH_RATE_LIMIT_BURST ?? limit;
      const admitted = limit > 0 ? await this.redis.rateLimit(target.principal.keyId, limit, burst) : undefined;
      target.retryAfter = admitted?.retryAfter ?? 0;
      // Counted once per request or operation, however many root fields the guard then runs for.
      if (target.retryAfter > 0) this.metrics.rateLimited.inc();
      // Over HTTP (REST and GraphQL) the answer says where the key stands; graphql-ws has no headers.
      const res = (target as { res?: { headersSent?: boolean; setHeader(name: string, value: string): unknown } }).res;
      if (admitted && res && !res.headersSent) {
        res.setHeader('RateLimit-Limit', String(burst));
        res.setHeader('RateLimit-Remaining', String(admitted.remaining));
        res.setHeader('RateLimit-Reset', String(admitted.resetSeconds));
        res.setHeader('RateLimit-Policy', `${burst};w=${Math.round((60 * burst) / limit)}`);
      }
    }
    if (target.retryAfter > 0) {
      throw new BerthError(
        ErrorCode.RATE_LIMITED,
        `This key is over its limit of ${limit} requests a minute; retry in ${target.retryAfter} s`,
        { retryAfterSeconds: target.retryAfter },
      );
    }
    return true;
  }
}
