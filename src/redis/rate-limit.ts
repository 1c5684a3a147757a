import type { Redis } from 'ioredis';

/**
 * GCRA, the generic cell rate algorithm: a token bucket kept as one timestamp. KEYS[1]
 * holds the theoretical arrival time (ms) of the next request at the sustained rate;
 * ARGV[1] is the interval between requests at that rate and ARGV[2] how far ahead of it a
 * burst may run. Returns {ms until the request would be admitted (0: admitted now), requests
 * still admitted at once after this one, ms until the bucket is full again}.
 * Time is Redis's, so API processes with skewed clocks still share one limit.
 */
const GCRA = `
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tat = math.max(tonumber(redis.call('get', KEYS[1]) or now), now)
local tolerance = tonumber(ARGV[2])
local wait = tat - tolerance - now
if wait > 0 then return {math.ceil(wait), 0, math.ceil(tat - now)} end
local nexttat = tat + interval
redis.call('set', KEYS[1], nexttat, 'px', math.ceil(nexttat - now))
-- (the 1e-6 keeps a limit whose interval is not a whole number of ms from losing one to rounding)
return {0, math.max(0, math.floor((now + tolerance - nexttat) / interval + 1e-6) + 1), math.ceil(nexttat - now)}`;

const COMMAND = 'berthGcra';
const defined = new WeakSet<Redis>();

/**
 * Admits one request under a limit of `perMinute` requests a minute with bursts of up to
 * `burst`, or returns the whole seconds to wait (at least 1). Unlike a fixed window there is
 * no boundary at which twice the limit gets through, and the wait is exact. One round trip.
 */
export async function admit(client: Redis, key: string, perMinute: number, burst = perMinute): Promise<number | undefined> {
  return (await admission(client, key, perMinute, burst)).retryAfter;
}

export interface Admission {
  /** Whole seconds to wait (at least 1); undefined: admitted. */
  retryAfter?: number;
  /** Requests the key may still make at once. */
  remaining: number;
  /** Seconds until the key's whole burst is available again. */
  resetSeconds: number;
}

/** {@link admit}, with what the RateLimit-* headers tell the caller. */
export async function admission(client: Redis, key: string, perMinute: number, burst = perMinute): Promise<Admission> {
  const intervalMs = 60_000 / perMinute;
  const tolerance = intervalMs * (Math.max(1, burst) - 1);
  // Sent once per connection, then called by its SHA (EVALSHA): this runs on every request.
  if (!defined.has(client)) {
    client.defineCommand(COMMAND, { numberOfKeys: 1, lua: GCRA });
    defined.add(client);
  }
  const run = (client as unknown as Record<typeof COMMAND, (...args: string[]) => Promise<[number, number, number]>>)[COMMAND];
  // The limit is part of the key: a bucket filled under one limit means nothing under another.
  const [waitMs, remaining, fullMs] = (await run.call(client, `${key}:${perMinute}:${burst}`, String(intervalMs), String(tolerance))).map(
    Number,
  );
  return {
    ...(waitMs > 0 ? { retryAfter: Math.max(1, Math.ceil(waitMs / 1000)) } : {}),
    remaining,
    resetSeconds: Math.max(0, Math.ceil(fullMs / 1000)),
  };
}
