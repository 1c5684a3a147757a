import { retryingFetch } from './berth-client';

/** A fake server: answers in turn, recording each request it got. */
function server(...answers: (() => Response)[]) {
  const seen: { method: string; idempotencyKey: string | null; body: string }[] = [];
  const fetch = (async (req: Request) => {
    seen.push({ method: req.method, idempotencyKey: req.headers.get('idempotency-key'), body: await req.text() });
    return (answers.shift() ?? (() => new Response('{}', { status: 200 })))();
  }) as unknown as typeof globalThis.fetch;
  return { fetch, seen };
}
const tooMany = (retryAfter?: string) => () =>
  new Response('{}', { status: 429, headers: retryAfter ? { 'retry-after': retryAfter } : {} });
const unavailable = () => new Response('{}', { status: 503, headers: { 'retry-after': '1' } });

describe('retryingFetch', () => {
  it('waits as long as Retry-After says on 429, then sends the same request again', async () => {
    const s = server(tooMany('1'), tooMany('1'));
    const waits: number[] = [];
    const started = Date.now();
    const res = await retryingFetch(
      { onRetry: (i) => waits.push(i.waitMs) },
      s.fetch,
    )(new Request('http://berth/v1/tenants', { method: 'POST', body: '{"slug":"a"}' }));
    expect(res.status).toBe(200);
    expect(waits).toEqual([1000, 1000]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    // A 429 was not processed: even a POST without a key is sent again, body and all.
    expect(s.seen).toEqual(Array(3).fill({ method: 'POST', idempotencyKey: null, body: '{"slug":"a"}' }));
  });

  it('retries a 503 only for a request safe to repeat: a read, or a create with an Idempotency-Key', async () => {
    const plain = server(unavailable);
    const post = await retryingFetch(
      { maxRetryWaitMs: 10 },
      plain.fetch,
    )(new Request('http://berth/v1/sites', { method: 'POST', body: '{}' }));
    expect([post.status, plain.seen.length]).toEqual([503, 1]);

    const keyed = server(unavailable);
    const retried = await retryingFetch(
      { maxRetryWaitMs: 10 },
      keyed.fetch,
    )(new Request('http://berth/v1/sites', { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k1' } }));
    expect([retried.status, keyed.seen.map((r) => r.idempotencyKey)]).toEqual([200, ['k1', 'k1']]);

    const read = server(unavailable);
    expect((await retryingFetch({ maxRetryWaitMs: 10 }, read.fetch)(new Request('http://berth/v1/sites'))).status).toBe(200);
  });

  it('gives up after the retries it was allowed, answering the last refusal', async () => {
    const s = server(tooMany(), tooMany(), tooMany());
    const res = await retryingFetch({ retries: 2, maxRetryWaitMs: 5 }, s.fetch)(new Request('http://berth/v1/sites'));
    expect([res.status, s.seen.length]).toEqual([429, 3]);
  });
});
