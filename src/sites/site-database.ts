import { BerthError, ErrorCode } from '../common/errors';
import type { DockerService } from '../docker/docker.service';

// Works with the official mariadb and mysql images and Berth's own: whichever client
// the image has; the password and SQL travel as exec environment, never as arguments.
const CLIENT = ['sh', '-c', 'c=$(command -v mariadb || command -v mysql) && exec "$c" -uroot -h127.0.0.1 --protocol=tcp --batch -e "$BERTH_SQL"'];

const IDENT = /^[a-z0-9_]{1,32}$/;
const PASSWORD = /^[A-Za-z0-9_-]{16,128}$/;

export interface SiteDbIdentity {
  dbName: string;
  dbUser: string;
  dbPassword: string;
}

/** SQL that gives a site its own database and a user with rights on that database only. */
export function createSiteDatabaseSql({ dbName, dbUser, dbPassword }: SiteDbIdentity): string {
  assertSafe(dbName, dbUser, dbPassword);
  return [
    `CREATE DATABASE IF NOT EXISTS \`${dbName}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    `CREATE USER IF NOT EXISTS '${dbUser}'@'%' IDENTIFIED BY '${dbPassword}'`,
    `ALTER USER '${dbUser}'@'%' IDENTIFIED BY '${dbPassword}'`,
    `GRANT ALL PRIVILEGES ON \`${dbName}\`.* TO '${dbUser}'@'%'`,
    'FLUSH PRIVILEGES',
  ].join(';\n');
}

export function dropSiteDatabaseSql({ dbName, dbUser }: Pick<SiteDbIdentity, 'dbName' | 'dbUser'>): string {
  assertSafe(dbName, dbUser, 'x'.repeat(16));
  return [`DROP DATABASE IF EXISTS \`${dbName}\``, `DROP USER IF EXISTS '${dbUser}'@'%'`].join(';\n');
}

function assertSafe(dbName: string, dbUser: string, password: string): void {
  if (!IDENT.test(dbName) || !IDENT.test(dbUser) || !PASSWORD.test(password)) {
    throw new BerthError(ErrorCode.INTERNAL, 'refusing to build SQL from unexpected identifiers');
  }
}

/** Runs SQL as root on a tenant's database server container. */
export async function runSql(docker: DockerService, container: string, rootPassword: string, sql: string): Promise<string> {
  const res = await docker.exec(container, CLIENT, [`MYSQL_PWD=${rootPassword}`, `BERTH_SQL=${sql}`]);
  if (res.exitCode !== 0) throw new Error(`SQL on ${container} failed (exit ${res.exitCode}): ${res.stderr.trim().slice(0, 500)}`);
  return res.stdout;
}

/** Waits until the server accepts root over TCP (the official images' init phase does not). */
export async function waitForDatabase(docker: DockerService, container: string, rootPassword: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      await runSql(docker, container, rootPassword, 'SELECT 1');
      return;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`database server ${container} did not become ready in ${timeoutMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
