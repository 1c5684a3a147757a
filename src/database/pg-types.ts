import { types, type CustomTypesConfig, type Pool, type QueryResultRow } from 'pg';

/** PostgreSQL's type OIDs whose default parsing in node-postgres differs from Prisma's. */
const TIMESTAMP = 1114;
const INT8 = 20;

/**
 * Prisma's `DateTime` columns are `timestamp(3)` without a time zone, holding UTC; node-postgres
 * reads those in the process's local zone. Read as Prisma reads them: UTC.
 */
export function parseUtcTimestamp(text: string): Date {
  return new Date(`${text.replace(' ', 'T')}Z`);
}

/**
 * node-postgres's parsers, but for the types where Prisma's client answers differently:
 * timestamps (UTC) and `BigInt` (a bigint, not a string). jsonb, float8, int4, enums and uuids
 * already come back as Prisma's client returns them.
 */
export const pgTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary') {
      if (oid === TIMESTAMP) return parseUtcTimestamp;
      if (oid === INT8) return (text: string) => BigInt(text);
    }
    return types.getTypeParser(oid, format);
  }) as CustomTypesConfig['getTypeParser'],
};

/** A named statement (parsed once per connection) on `pool`, its columns typed by {@link pgTypes}. */
export async function namedRead<T extends QueryResultRow>(
  pool: Pick<Pool, 'query'>,
  name: string,
  sql: string,
  values: unknown[],
): Promise<T[]> {
  return (await pool.query<T>({ name, text: sql, values, types: pgTypes })).rows;
}
