import type { DockerService } from '../docker/docker.service';
import { rewriteUrls } from './url-rewrite';

/**
 * Moves a WordPress site to a new URL (its primary domain changed): every text value in the
 * site's database that holds the old origin is rewritten by {@link rewriteUrls} (plain,
 * JSON-escaped, URL-encoded, PHP-serialized with lengths recomputed), except GUIDs, which
 * WordPress says must never change. Runs SQL as root on the tenant's database server; values
 * travel hex-encoded both ways, and statements on the client's stdin, so any content is safe.
 */

// The database and the SQL: the database name in the exec's environment, the SQL on stdin.
const CLIENT = [
  'sh',
  '-c',
  'c=$(command -v mariadb || command -v mysql) && exec "$c" -uroot -h127.0.0.1 --protocol=tcp --batch -N --max-allowed-packet=256M "$BERTH_DB"',
];
const IDENT = /^[A-Za-z0-9_$]{1,64}$/;
/** Columns WordPress must keep as they are: a post's GUID identifies it for feed readers. */
const UNTOUCHED = new Set(['guid']);
/** Rows per UPDATE batch (statements sent in one exec). */
const BATCH = 200;

export interface MoveTarget {
  container: string;
  rootPassword: string;
  dbName: string;
}

export interface MoveReport {
  from: string;
  to: string;
  /** Values rewritten, per table.column. */
  rewritten: Record<string, number>;
}

/** The origin of a WordPress URL (home), without a trailing slash: what rewriting replaces. */
export const originOf = (url: string) => new URL(url).origin;

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');
const unhex = (h: string) => Buffer.from(h, 'hex').toString('utf8');
const quoteIdent = (name: string) => {
  if (!IDENT.test(name)) throw new Error(`refusing an unexpected identifier: ${name}`);
  return `\`${name}\``;
};

async function sql(docker: DockerService, t: MoveTarget, statements: string, signal?: AbortSignal): Promise<string[][]> {
  if (!IDENT.test(t.dbName)) throw new Error(`refusing an unexpected database name: ${t.dbName}`);
  const res = await docker.exec(t.container, CLIENT, {
    env: [`MYSQL_PWD=${t.rootPassword}`, `BERTH_DB=${t.dbName}`],
    stdin: statements,
    signal,
  });
  if (res.exitCode !== 0) throw new Error(`SQL on ${t.container} failed (exit ${res.exitCode}): ${res.stderr.trim().slice(0, 500)}`);
  return res.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
}

/**
 * Rewrites `from`'s origin to `to`'s in every UTF-8 text column of the site's database
 * (GUIDs aside) of the tables keyed by one integer column (all of WordPress's own and most
 * plugins'). Options (home and siteurl among them) come last: a move cut short is done again
 * from the old URL. Each row is written only if it still holds what was read, so a value
 * WordPress changed meanwhile is left to a later move rather than overwritten.
 */
export async function moveWordPress(
  docker: DockerService,
  t: MoveTarget,
  from: string,
  to: string,
  signal?: AbortSignal,
): Promise<MoveReport> {
  const [origin, target] = [originOf(from), originOf(to)];
  const report: MoveReport = { from: origin, to: target, rewritten: {} };
  if (origin === target) return report;
  // The hostname alone: a URL-encoded origin spells its port separator %3A.
  const host = new URL(origin).hostname;
  if (!/^[A-Za-z0-9.[\]:-]+$/.test(host)) throw new Error(`refusing an unexpected host: ${host}`);
  const db = `'${t.dbName}'`;
  const columns = await sql(
    docker,
    t,
    `SELECT c.TABLE_NAME, c.COLUMN_NAME, k.COLUMN_NAME FROM information_schema.COLUMNS c
       JOIN information_schema.KEY_COLUMN_USAGE k ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME AND k.CONSTRAINT_NAME = 'PRIMARY'
       JOIN information_schema.COLUMNS kc ON kc.TABLE_SCHEMA = k.TABLE_SCHEMA AND kc.TABLE_NAME = k.TABLE_NAME AND kc.COLUMN_NAME = k.COLUMN_NAME
      WHERE c.TABLE_SCHEMA = ${db} AND c.DATA_TYPE IN ('char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext')
        AND c.CHARACTER_SET_NAME IN ('utf8', 'utf8mb3', 'utf8mb4')
        AND kc.DATA_TYPE IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint')
        AND (SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE k2
              WHERE k2.TABLE_SCHEMA = c.TABLE_SCHEMA AND k2.TABLE_NAME = c.TABLE_NAME AND k2.CONSTRAINT_NAME = 'PRIMARY') = 1
      ORDER BY c.TABLE_NAME LIKE '%options', c.TABLE_NAME, c.COLUMN_NAME;`,
    signal,
  );
  // Every column read in one exec (an exec costs a few hundred ms; a site has some fifty
  // text columns), rows tagged with their table and column, in the order above.
  const scanned = columns.filter(([, column, key]) => !UNTOUCHED.has(column) && column !== key);
  const rows = scanned.length
    ? await sql(
        docker,
        t,
        scanned
          .map(([table, column, key]) => {
            const [tbl, col, id] = [quoteIdent(table), quoteIdent(column), quoteIdent(key)];
            // The host appears in every form the rewrite handles (plain, \/-escaped, %-encoded).
            return `SELECT '${table}', '${column}', ${id}, HEX(${col}) FROM ${tbl} WHERE ${col} LIKE '%${host}%';`;
          })
          .join('\n'),
        signal,
      )
    : [];
  const keyOf = new Map(scanned.map(([table, column, key]) => [`${table}.${column}`, key]));
  const updates: string[] = [];
  for (const [table, column, key_, value] of rows) {
    const key = keyOf.get(`${table}.${column}`);
    if (!key || !/^\d+$/.test(key_) || !/^[0-9A-F]*$/.test(value ?? '')) throw new Error(`unexpected row from ${table}.${column}`);
    const before = unhex(value);
    const after = rewriteUrls(before, origin, target);
    if (after === before) continue;
    const [tbl, col, id] = [quoteIdent(table), quoteIdent(column), quoteIdent(key)];
    updates.push(
      `UPDATE ${tbl} SET ${col} = CONVERT(UNHEX('${hex(after)}') USING utf8mb4) WHERE ${id} = ${key_} AND BINARY ${col} = UNHEX('${value}');`,
    );
    report.rewritten[`${table}.${column}`] = (report.rewritten[`${table}.${column}`] ?? 0) + 1;
  }
  // In the order read: options last.
  for (let i = 0; i < updates.length; i += BATCH) {
    signal?.throwIfAborted();
    await sql(docker, t, `START TRANSACTION;\n${updates.slice(i, i + BATCH).join('\n')}\nCOMMIT;`, signal);
  }
  return report;
}
