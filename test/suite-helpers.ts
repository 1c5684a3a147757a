/** Helpers shared by several suites: graphql-ws clients, provisioning, dumps of Redis and tables. */
import { createClient, type Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { testRedisUrl } from './env';
import { auth, waitForJob, type Harness } from './harness';

export { envOf, exec } from './harness';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** POST /v1/sites and wait for the provisioning job to succeed. */
export async function provision(h: Harness, key: string, body: Record<string, unknown>): Promise<{ id: string; name: string; tenantId: string }> {
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
