import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, type QueryResultRow } from 'pg';
import { PrismaClient } from '../generated/prisma/client';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { namedRead } from './pg-types';

@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  /** The connections Prisma's adapter uses, shared with {@link hotRead}. */
  private readonly pool: Pool;

  constructor(@Inject(BERTH_CONFIG) config: BerthConfig) {
    const pool = new Pool({ connectionString: config.DATABASE_URL, max: config.DATABASE_POOL_SIZE });
    super({
      // The adapter ends the pool on $disconnect, as it would one it made itself.
      adapter: new PrismaPg(pool, { disposeExternalPool: true }),
      // Bursts of creations queue for connections and for their tenant's row lock; Prisma's
      // defaults (2 s to get a connection, 5 s per transaction) would fail them needlessly.
      transactionOptions: { maxWait: 15_000, timeout: 30_000 },
    });
    this.pool = pool;
  }

  /**
   * One read on the API's hottest path, without Prisma's client: a named statement (parsed
   * once per connection) through the same pool, its columns typed as Prisma types them
   * ({@link namedRead}). A query through Prisma costs about three times its CPU (measured in
   * the README's Performance section). `name` must identify `sql`; only for reads.
   */
  async hotRead<T extends QueryResultRow>(name: string, sql: string, values: unknown[]): Promise<T[]> {
    return namedRead<T>(this.pool, name, sql, values);
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
  }
}
