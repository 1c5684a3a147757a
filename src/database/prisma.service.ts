import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';

@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  constructor(@Inject(BERTH_CONFIG) config: BerthConfig) {
    super({
      adapter: new PrismaPg({ connectionString: config.DATABASE_URL, max: config.DATABASE_POOL_SIZE }),
      // Bursts of creations queue for connections and for their tenant's row lock; Prisma's
      // defaults (2 s to get a connection, 5 s per transaction) would fail them needlessly.
      transactionOptions: { maxWait: 15_000, timeout: 30_000 },
    });
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
  }
}
