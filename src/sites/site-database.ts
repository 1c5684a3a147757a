import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { BerthError, ErrorCode } from '../common/errors';
import type { DockerService } from '../docker/docker.service';

// Works with the official mariadb and mysql images and Berth's own: whichever client
// the image has; the password and SQL travel as exec environment, never as arguments.
const CLIENT = [
  'sh',
  '-c',
  'c=$(command -v mariadb || command -v mysql) && exec "$c" -uroot -h127.0.0.1 --protocol=tcp --batch -e "$BERTH_SQL"',
];

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
export async function runSql(
  docker: DockerService,
  container: string,
  rootPassword: string,
  sql: string,
  signal?: AbortSignal,
): Promise<string> {
  const res = await docker.exec(container, CLIENT, { env: [`MYSQL_PWD=${rootPassword}`, `BERTH_SQL=${sql}`], signal });
  if (res.exitCode !== 0) throw new Error(`SQL on ${container} failed (exit ${res.exitCode}): ${res.stderr.trim().slice(0, 500)}`);
  return res.stdout;
}

/** The port the database images listen on (Berth's, and the official mariadb and mysql images). */
export const DB_PORT = 3306;
/** For the connection, and then for the greeting. */
const TCP_TIMEOUT_MS = 3000;
/**
 * A refused connection costs the kernel a few microseconds and no process: the server's
 * start (0.2 s on this machine) is seen within 50 ms of it, not 250.
 */
const TCP_INTERVAL_MS = 50;
/** How long the server's address, which costs an inspect, is taken as known while it does not answer yet. */
const ADDRESS_TTL_MS = 1000;
/** Each exec is a new runc process: poll that way only when the container is out of reach. */
const EXEC_INTERVAL_MS = 2000;

/** What a MariaDB/MySQL server says first: a handshake, or an error packet ("Too many connections"). */
export type Greeting = { ok: true; version: string } | { ok: false; error: string };

/** Reads the first packet of the server's side; undefined while it is incomplete. */
export function parseGreeting(data: Buffer): Greeting | undefined {
  if (data.length < 4) return undefined;
  const length = data.readUIntLE(0, 3);
  if (data.length < 4 + length) return undefined;
  const payload = data.subarray(4, 4 + length);
  if (payload[0] === 0x0a) {
    const end = payload.indexOf(0, 1);
    return { ok: true, version: payload.subarray(1, end < 0 ? undefined : end).toString('latin1') };
  }
  if (payload[0] === 0xff) {
    const code = payload.length >= 3 ? payload.readUInt16LE(1) : 0;
    const text = payload.subarray(payload[3] === 0x23 ? 9 : 3).toString('utf8');
    return { ok: false, error: `server answered error ${code}: ${text}` };
  }
  return { ok: false, error: `unexpected first packet (0x${(payload[0] ?? 0).toString(16)})` };
}

/** The TCP connection could not be made at all (filtered, no route): polling it again will not help. */
export class UnreachableError extends Error {}

/** Connects, reads the server's greeting and hangs up (no credentials are sent). */
export function readGreeting(host: string, port: number, timeoutMs = TCP_TIMEOUT_MS, signal?: AbortSignal): Promise<Greeting> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const socket = connect({ host, port });
    let data = Buffer.alloc(0);
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      fn();
    };
    const onAbort = () => done(() => reject(signal?.reason));
    signal?.addEventListener('abort', onAbort);
    let timer = setTimeout(
      () => done(() => reject(new UnreachableError(`no TCP connection to ${host}:${port} within ${timeoutMs} ms`))),
      timeoutMs,
    );
    socket.once('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => done(() => resolve({ ok: false, error: `no greeting from ${host}:${port} within ${timeoutMs} ms` })),
        timeoutMs,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const greeting = parseGreeting(data);
      if (greeting) done(() => resolve(greeting));
    });
    socket.once('end', () => done(() => resolve({ ok: false, error: `${host}:${port} closed the connection without a greeting` })));
    socket.on('error', (e: NodeJS.ErrnoException) =>
      done(() =>
        ['EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT'].includes(e.code ?? '')
          ? reject(new UnreachableError(e.message))
          : resolve({ ok: false, error: e.message }),
      ),
    );
  });
}

/** The container's address on its own network (the tenant network), if it runs. */
export async function databaseAddress(docker: Pick<DockerService, 'inspectContainer'>, container: string): Promise<string> {
  const info = await docker.inspectContainer(container);
  if (!info) throw new Error(`container ${container} does not exist`);
  if (!info.State.Running) throw new Error(`container ${container} is not running (${info.State.Status})`);
  const networks = info.NetworkSettings.Networks ?? {};
  const address = networks[info.HostConfig.NetworkMode ?? '']?.IPAddress || Object.values(networks).find((n) => n.IPAddress)?.IPAddress;
  if (!address) throw new Error(`container ${container} has no network address`);
  return address;
}

export interface ReadinessProbe {
  name: string;
  address(): Promise<string>;
  port: number;
  /** The slow way, for when the address cannot be reached from here. */
  viaExec(): Promise<void>;
  tcpTimeoutMs?: number;
  intervalMs?: { tcp: number; exec: number };
  greet?: typeof readGreeting;
}

/**
 * Polls until the server greets over TCP. The images' init phase runs a temporary server
 * without networking, so a greeting means the real server is up. When Berth cannot reach the
 * container's network (Berth itself in a container elsewhere), falls back to exec.
 */
export async function waitUntilReady(probe: ReadinessProbe, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const intervals = probe.intervalMs ?? { tcp: TCP_INTERVAL_MS, exec: EXEC_INTERVAL_MS };
  const deadline = Date.now() + timeoutMs;
  let viaExec = false;
  let last: string;
  let address: { value: string; at: number } | undefined;
  let kept = false;
  const addressNow = async () => {
    kept = !!address && Date.now() - address.at < ADDRESS_TTL_MS;
    if (!kept) address = { value: await probe.address(), at: Date.now() };
    return address!.value;
  };
  for (;;) {
    signal?.throwIfAborted();
    try {
      if (viaExec) return await probe.viaExec();
      const greeting = await (probe.greet ?? readGreeting)(await addressNow(), probe.port, probe.tcpTimeoutMs, signal);
      if (greeting.ok) return;
      last = greeting.error;
    } catch (e) {
      signal?.throwIfAborted();
      // Unreachable at a kept address: the server may have restarted elsewhere; read it again
      // before concluding that its network is out of reach from here.
      if (e instanceof UnreachableError) {
        if (kept) address = undefined;
        else viaExec = true;
      }
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`database server ${probe.name} did not become ready in ${timeoutMs} ms: ${last}`);
    await delay(viaExec ? intervals.exec : intervals.tcp, undefined, { signal });
  }
}

/** Waits until the tenant's database server accepts connections (the official images' init phase does not). */
export async function waitForDatabase(
  docker: DockerService,
  container: string,
  rootPassword: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  await waitUntilReady(
    {
      name: container,
      address: () => databaseAddress(docker, container),
      port: DB_PORT,
      viaExec: async () => void (await runSql(docker, container, rootPassword, 'SELECT 1', signal)),
    },
    timeoutMs,
    signal,
  );
}
