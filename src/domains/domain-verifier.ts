import { Inject, Injectable, Logger } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { RedisService } from '../redis/redis.service';
import { DomainsService } from './domains.service';

/** With BERTH_DOMAIN_VERIFICATION=dns, checks pending domains every BERTH_DOMAIN_CHECK_MS, one worker at a time. */
@Injectable()
export class DomainVerifier {
  private readonly logger = new Logger('Domains');
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly redis: RedisService,
    private readonly domains: DomainsService,
  ) {}

  start(): void {
    if (this.config.BERTH_DOMAIN_VERIFICATION !== 'dns') return;
    this.timer = setInterval(() => {
      this.pass().catch((e: Error) => this.logger.warn(`domain check failed: ${e.message}`));
    }, this.config.BERTH_DOMAIN_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async pass(): Promise<void> {
    const lock = await this.redis.tryLock('berth:lock:domain-check', Math.max(30_000, this.config.BERTH_DOMAIN_CHECK_MS));
    if (!lock) return;
    try {
      const verified = await this.domains.checkPending();
      if (verified) this.logger.log(`${verified} domain(s) verified`);
    } finally {
      await lock.release();
    }
  }
}
