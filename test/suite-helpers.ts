/** Helpers shared by several suites: graphql-ws clients, provisioning, dumps of Redis and tables. */
import Docker from 'dockerode';
import { createClient, type Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import { Client as PgClient } from 'pg';
import WebSocket from 'ws';
import { dockerOptions } from '../src/docker/docker-options';
import { removeTenantObjects } from './docker-cleanup';
import { TEST_INSTANCE, testRedisUrl } from './env';
import { auth, waitForJob, type Harness } from './harness';

export { envOf, exec } from './harness';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Jest loads this module afresh for each test file: this is when the file's suite began.
const suiteStarted = new Date();

/**
 * Removes what this suite made, for an afterAll once its Berth processes have stopped: the
 * sites of the tenants created since the suite began are marked deleted, so that no later
 * suite's Berth repairs or probes them, and those tenants' Docker objects are removed by
 * their labels. Suites run one at a time in a slot, so no other suite's tenants match.
 */
export async function removeSuiteObjects(): Promise<void> {
  const db = new PgClient({ connectionString: process.env.DATABASE_URL });
  await db.connect();
  try {
    const { rows } = await db.query<{ id: string; slug: string }>('SELECT id, slug FROM "Tenant" WHERE "createdAt" >= $1', [suiteStarted]);
    if (!rows.length) return;
    const ids = rows.map((t) => t.id);
    await db.query(
      `UPDATE "Job" SET status = 'CANCELLED', error = 'the test suite ended', "finishedAt" = now() WHERE "tenantId" = ANY($1::uuid[]) AND status IN ('QUEUED', 'RUNNING')`,
      [ids],
    );
    await db.query(
      `UPDATE "Site" SET status = 'DELETED', "desiredState" = 'ABSENT', "liveName" = NULL, "hostPort" = NULL, health = 'UNKNOWN', "deletedAt" = now() WHERE "tenantId" = ANY($1::uuid[]) AND status <> 'DELETED'`,
      [ids],
    );
    const docker = new Docker(dockerOptions(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'));
    for (const t of rows) await removeTenantObjects(docker, TEST_INSTANCE, t.slug);
  } finally {
    await db.end();
  }
}

/** The suite's own Redis database (the one Berth uses in this test slot). */
export const testRedis = () => new Redis(testRedisUrl());

/** A graphql-ws client; `key` goes in the connection parameters as Berth expects. */
export function wsClient(h: Harness, key?: string): Client {
  return createClient({
    url: h.berth.url!.replace(/^http/, 'ws') + '/graphql',
    webSocketImpl: WebSocket,
    connectionParams: key ? { authorization: `Bearer ${key}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
}

/** The id of a site's WordPress container, found by its labels (names are Berth's business). */
export async function siteContainer(h: Harness, siteId: string): Promise<string> {
  const found = await h.docker.listContainers({ all: true, filters: { label: [`berth.site-id=${siteId}`, 'berth.role=wordpress'] } });
  if (found.length !== 1) throw new Error(`site ${siteId} has ${found.length} WordPress containers`);
  return found[0].Id;
}

/** POST /v1/sites and wait for the provisioning job to succeed. */
export async function provision(
  h: Harness,
  key: string,
  body: Record<string, unknown>,
): Promise<{ id: string; name: string; tenantId: string }> {
  const res = await h.http.post('/v1/sites').set(auth(key)).send(body);
  if (res.status !== 202) throw new Error(`POST /v1/sites: ${res.status} ${JSON.stringify(res.body)}`);
  const job = await waitForJob(h, key, res.body.job.id);
  if (job.status !== 'SUCCEEDED') throw new Error(`provisioning failed: ${JSON.stringify(job)}`);
  return res.body.site;
}

/** Every value of every key of a Redis database, whatever its type, as text. */
export async function dumpRedis(redis: Redis): Promise<{ keys: number; text: string }> {
  const parts: string[] = [];
  let keys = 0;
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 500);
    cursor = next;
    for (const key of batch) {
      keys += 1;
      const type = await redis.type(key);
      let value: unknown;
      switch (type) {
        case 'string':
          value = await redis.get(key);
          break;
        case 'hash':
          value = await redis.hgetall(key);
          break;
        case 'list':
          value = await redis.lrange(key, 0, -1);
          break;
        case 'set':
          value = await redis.smembers(key);
          break;
        case 'zset':
          value = await redis.zrange(key, 0, -1, 'WITHSCORES');
          break;
        case 'stream':
          value = await redis.xrange(key, '-', '+');
          break;
        default:
          value = `<${type}>`;
      }
      parts.push(`${key} (${type}): ${JSON.stringify(value)}`);
    }
  } while (cursor !== '0');
  return { keys, text: parts.join('\n') };
}

/** Every row of the given tables as JSON text, one line per row. */
export async function dumpTables(h: Harness, tables: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const table of tables) {
    const { rows } = await h.db.query(`SELECT row_to_json(t)::text AS j FROM "${table}" t`);
    out[table] = rows.map((r) => r.j as string).join('\n');
  }
  return out;
}

/** How many reconciler passes have completed (from Berth's metrics, read with its metrics token). */
export async function reconcilerPasses(h: Harness, metricsToken: string): Promise<number> {
  const text = (await h.http.get('/metrics').set(auth(metricsToken))).text;
  const m = text.match(/^berth_reconcile_pass_duration_seconds_count\{result="ok"\} (\d+)$/m);
  return m ? Number(m[1]) : 0;
}
