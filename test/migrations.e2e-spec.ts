import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { migrate, readMigrations } from '../src/database/migrator';
import { TEST_SLOT } from './env';

const root = join(__dirname, '..');
const baseUrl = process.env.DATABASE_URL as string;
const adminUrl = process.env.BERTH_TEST_ADMIN_DATABASE_URL ?? baseUrl;

function urlFor(db: string): string {
  const u = new URL(baseUrl);
  u.pathname = `/${db}`;
  return u.toString();
}

async function freshDatabase(db: string): Promise<string> {
  const c = new Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
  await c.query(`CREATE DATABASE "${db}"`);
  await c.end();
  return urlFor(db);
}

/**
 * The schema as pg_dump sees it, without the migrations bookkeeping table, as a sorted list
 * of definitions: column order (which ALTER TABLE ADD COLUMN cannot choose) does not count.
 */
function schemaOf(url: string): string[] {
  const dump = execFileSync('pg_dump', ['--schema-only', '--no-owner', '--no-privileges', '--exclude-table=_prisma_migrations', url], {
    encoding: 'utf8',
  });
  let table = '';
  return dump
    .split('\n')
    .filter((l) => l && !l.startsWith('--') && !l.startsWith('SET ') && !l.startsWith('SELECT pg_catalog') && !l.startsWith('\\'))
    .map((l) => {
      const create = l.match(/^CREATE TABLE (\S+)/);
      if (create) table = create[1];
      // Columns are qualified by their table so that moving one between tables is a change.
      return l.startsWith('    ') ? `${table}: ${l.trim().replace(/,$/, '')}` : l.trim();
    })
    .sort();
}

describe('migrations', () => {
  it('produce exactly the schema that prisma/schema.prisma describes', async () => {
    const fromMigrations = await freshDatabase(`berth_test${TEST_SLOT}_drift_migrations`);
    await migrate(fromMigrations);

    const fromSchema = await freshDatabase(`berth_test${TEST_SLOT}_drift_schema`);
    const sql = execFileSync('bash', [join(root, 'scripts/migration-sql.sh')], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: fromSchema },
    });
    expect(sql).toMatch(/CREATE TABLE "Site"/);
    const c = new Client({ connectionString: fromSchema });
    await c.connect();
    await c.query(sql);
    await c.end();

    expect(schemaOf(fromMigrations)).toEqual(schemaOf(fromSchema));
  });

  it('are applied once, even by processes starting together, and recorded like prisma migrate does', async () => {
    const url = await freshDatabase(`berth_test${TEST_SLOT}_migrate_twice`);
    const results = await Promise.all([migrate(url), migrate(url), migrate(url)]);
    expect(results.flat()).toEqual(readMigrations().map((m) => m.name));
    const c = new Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query('SELECT migration_name, checksum, finished_at FROM "_prisma_migrations"');
    await c.end();
    expect(rows).toHaveLength(readMigrations().length);
    expect(rows[0].checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0].finished_at).not.toBeNull();
  });

  it('refuse to run when an applied migration was edited afterwards', async () => {
    const url = await freshDatabase(`berth_test${TEST_SLOT}_migrate_edited`);
    await migrate(url);
    const edited = readMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
    await expect(migrate(url, edited)).rejects.toThrow(/was changed after it was applied/);
  });
});
