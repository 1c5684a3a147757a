/**
 * The per-key rate limiter (GCRA in a Redis script), against the real Redis of this test
 * slot: bursts, the exact wait it reports, and the sustained rate over time.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { admit } from '../src/redis/rate-limit';
import { sleep, testRedis } from './suite-helpers';

let redis: Redis;
beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await redis.quit();
});

const key = () => `berth:rate:test:${randomUUID()}`;

describe('the rate limiter', () => {
  it('admits a burst, refuses the next request with the seconds to wait, and admits again after them', async () => {
    const k = key();
    // 60 a minute: one a second sustained, bursts of 3.
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await admit(redis, k, 60, 3));
    expect(answers.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(answers[3]).toBe(1);
    await sleep(answers[3]! * 1000 + 50);
    expect(await admit(redis, k, 60, 3)).toBeUndefined();
    expect(await admit(redis, k, 60, 3)).toBe(1);
  });

  it('never lets through more than the burst plus the sustained rate, however hard it is hit', async () => {
    const k = key();
    // 600 a minute: one each 100 ms, bursts of 5; 40 callers hammer it for 1.5 s.
    const started = Date.now();
    let admitted = 0;
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        while (Date.now() - started < 1500) {
          if ((await admit(redis, k, 600, 5)) === undefined) admitted++;
          await sleep(5);
        }
      }),
    );
    const elapsed = Date.now() - started;
    expect(admitted).toBeGreaterThanOrEqual(5 + 10); // the burst, then at least 1 s worth
    expect(admitted).toBeLessThanOrEqual(5 + Math.ceil(elapsed / 100) + 1);
  });

  it('starts afresh when the limit changes: a bucket filled under one limit does not block under another', async () => {
    const k = key();
    for (let i = 0; i < 5; i++) expect(await admit(redis, k, 1, 5)).toBeUndefined();
    expect(await admit(redis, k, 1, 5)).toBeGreaterThan(30);
    expect(await admit(redis, k, 1200)).toBeUndefined();
  });

  it('limits each key on its own and keeps nothing once a key has been idle long enough', async () => {
    const [a, b] = [key(), key()];
    expect(await admit(redis, a, 60, 1)).toBeUndefined();
    expect(await admit(redis, a, 60, 1)).toBe(1);
    expect(await admit(redis, b, 60, 1)).toBeUndefined();
    const ttl = await redis.pttl(`${a}:60:1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000);
  });
});
