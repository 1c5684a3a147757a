import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import createClient, { type Client } from 'openapi-fetch';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { components, paths } from '../generated/openapi';

/**
 * Berth's typed client: the REST API's types are generated from openapi.json at build time
 * (openapi-typescript) and the calls go through openapi-fetch, so every path, parameter and
 * body is checked by the compiler. This wrapper adds what every caller would otherwise
 * write by hand: retries that honour Retry-After, idempotency keys on creates, errors with
 * Berth's codes, and waiting for a job by following it (a GraphQL subscription, not polling).
 */
export type Schemas = components['schemas'];
export type Job = Schemas['JobView'];
export type Site = Schemas['SiteView'];

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
/** How long waitForJob lets a job be silent before reading it (a missed end costs at most this). */
const QUIET_MS = 15_000;

/** An answer of 4xx or 5xx, with Berth's error code (problem+json `code`). */
export class BerthApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly problem?: unknown,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'BerthApiError';
  }
}

export interface BerthClientOptions {
  /** Berth's base URL, such as http://127.0.0.1:3000. */
  url: string;
  apiKey?: string;
  /** Attempts after the first for 429 and 503 (default 5). */
  retries?: number;
  /** The longest a retry waits, whatever Retry-After says (default 30 s). */
  maxRetryWaitMs?: number;
  /** Told before each retry (the CLI says so on stderr). */
  onRetry?: (info: { status: number; waitMs: number; attempt: number }) => void;
}

/**
 * fetch that tries again on 429 (the request was not processed) and on 503 (a dependency is
 * away) for requests safe to repeat: reads, and writes that carry an Idempotency-Key.
 */
export function retryingFetch(options: Pick<BerthClientOptions, 'retries' | 'maxRetryWaitMs' | 'onRetry'>, base: typeof fetch = fetch) {
  const retries = options.retries ?? 5;
  const maxWait = options.maxRetryWaitMs ?? 30_000;
  return async (request: Request): Promise<Response> => {
    const repeatable = ['GET', 'HEAD', 'PUT', 'DELETE'].includes(request.method) || request.headers.has('idempotency-key');
    for (let attempt = 0; ; attempt++) {
      const response = await base(request.clone());
      const retry = response.status === 429 || (response.status === 503 && repeatable);
      if (!retry || attempt >= retries) return response;
      const seconds = Number(response.headers.get('retry-after'));
      const waitMs = Math.min(maxWait, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 250 * 2 ** attempt);
      options.onRetry?.({ status: response.status, waitMs, attempt: attempt + 1 });
      await response.body?.cancel();
      await delay(waitMs);
    }
  };
}

export class BerthClient {
  /** Every REST operation, typed from openapi.json: `client.api.GET('/v1/sites/{id}', { params: { path: { id } } })`. */
  readonly api: Client<paths>;

  constructor(private readonly options: BerthClientOptions) {
    this.api = createClient<paths>({
      baseUrl: options.url.replace(/\/$/, ''),
      headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
      fetch: retryingFetch(options),
    });
  }

  /** The data of an answer, or a BerthApiError carrying its code. */
  async call<T>(answer: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
    const { data, error, response } = await answer;
    if (response.ok) return data as T;
    const problem = (error ?? {}) as { code?: string; detail?: string };
    throw new BerthApiError(response.status, problem.code ?? `HTTP_${response.status}`, problem.detail ?? response.statusText, error);
  }

  /** Creates a site with an Idempotency-Key (a fresh one unless given), so a retried create makes one site. */
  createSite(body: Schemas['CreateSiteInput'], idempotencyKey: string = randomUUID()) {
    return this.call(this.api.POST('/v1/sites', { body, params: { header: { 'Idempotency-Key': idempotencyKey } } }));
  }

  getJob(id: string): Promise<Job> {
    return this.call(this.api.GET('/v1/jobs/{id}', { params: { path: { id } } }));
  }

  /**
   * Resolves with the job once it has ended (SUCCEEDED, FAILED or CANCELLED), telling
   * onUpdate each state on the way. Follows the job over Berth's `jobUpdated` GraphQL
   * subscription (graphql-ws); the job is read once the subscription is in place, so a job
   * that ended before is not waited for in vain.
   */
  async waitForJob(id: string, onUpdate?: (job: Job) => void): Promise<Job> {
    const ws = createWsClient({
      url: `${this.options.url.replace(/^http/, 'ws').replace(/\/$/, '')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {},
      retryAttempts: 5,
      lazy: true,
    });
    const updates = ws.iterate<{ jobUpdated: Job }>({
      query: `subscription ($id: ID!) { jobUpdated(id: $id) {
        id tenantId siteId kind status progress attempts error createdAt startedAt finishedAt
        steps { name status startedAt finishedAt detail error } } }`,
      variables: { id },
    });
    // The subscription is a fast path, never a dependency: if it cannot be had (a proxy that
    // refuses WebSockets, Berth restarting), the job is read every QUIET_MS instead.
    type Next = IteratorResult<{ data?: { jobUpdated: Job } | null; errors?: readonly { message: string }[] }>;
    let subscribed = true;
    const follow = (): Promise<Next | 'lost'> => updates.next().catch(() => 'lost' as const);
    try {
      // The first next() opens the connection and subscribes; Berth then sends the job as it is.
      // The job is also read now (its state at once, whatever the subscription does) and again
      // after any quiet spell (a server that cannot be subscribed to is still followed).
      let pending = follow();
      const now = await this.getJob(id);
      onUpdate?.(now);
      if (TERMINAL.has(now.status)) return now;
      for (;;) {
        const quiet = new AbortController();
        const next = await Promise.race([
          subscribed ? pending : new Promise<never>(() => undefined),
          delay(QUIET_MS, 'quiet' as const, { signal: quiet.signal }).catch(() => 'aborted' as const),
        ]).finally(() => quiet.abort());
        if (next === 'lost' || (typeof next === 'object' && next.done)) subscribed = false;
        if (typeof next !== 'object' || next.done) {
          const job = await this.getJob(id);
          if (TERMINAL.has(job.status)) {
            onUpdate?.(job);
            return job;
          }
          continue;
        }
        pending = follow();
        if (next.value.errors?.length) throw new Error(`jobUpdated: ${next.value.errors.map((e) => e.message).join('; ')}`);
        const job = next.value.data?.jobUpdated;
        if (!job) continue;
        onUpdate?.(job);
        if (TERMINAL.has(job.status)) return job;
      }
    } finally {
      // Unsubscribe and close, but never wait long: dispose() waits for a connection that may
      // never open (a proxy that stalls the upgrade); the job's end is already known.
      const closing = Promise.resolve(updates.return?.(undefined))
        .then(() => ws.dispose())
        .catch(() => undefined);
      await Promise.race([closing, delay(2000, undefined, { ref: false })]);
    }
  }

  /**
   * The caller's events as they happen (GET /v1/events/stream, server-sent events), until
   * `signal` aborts. Each is the event's JSON; `onOpen` is told once the stream is open, so
   * from then on no event is missed.
   */
  async *events(options: { siteId?: string; signal?: AbortSignal; onOpen?: () => void } = {}): AsyncGenerator<Schemas['EventView']> {
    const url = new URL(`${this.options.url.replace(/\/$/, '')}/v1/events/stream`);
    if (options.siteId) url.searchParams.set('siteId', options.siteId);
    const response = await retryingFetch(this.options)(
      new Request(url, {
        headers: this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {},
        signal: options.signal,
      }),
    );
    if (!response.ok) {
      const problem = (await response.json().catch(() => ({}))) as { code?: string; detail?: string };
      throw new BerthApiError(response.status, problem.code ?? `HTTP_${response.status}`, problem.detail ?? response.statusText, problem);
    }
    options.onOpen?.();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => line.slice(6))
            .join('\n');
          if (data) yield JSON.parse(data) as Schemas['EventView'];
        }
      }
    } catch (e) {
      if (!options.signal?.aborted) throw e;
    }
  }
}
