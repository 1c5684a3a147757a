import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';

/** Caddy's admin API: the one place Berth talks to the edge. */
@Injectable()
export class CaddyClient {
  private readonly base: string;
  /** The admin API's listen address, which every loaded config must keep. */
  readonly adminListen: string;

  constructor(@Inject(BERTH_CONFIG) config: BerthConfig) {
    this.base = config.BERTH_EDGE_ADMIN_URL.replace(/\/$/, '');
    this.adminListen = config.BERTH_EDGE_ADMIN_LISTEN ?? new URL(this.base).host;
  }

  /** The running configuration (null when Caddy holds none, as after a restart). */
  async config(): Promise<unknown> {
    const res = await this.call('GET', '/config/');
    return JSON.parse(await res.text()) as unknown;
  }

  /** Whether the running configuration holds an object with this @id (an answer of a few bytes, whatever the configuration's size). */
  async has(id: string): Promise<boolean> {
    const res = await this.call('GET', `/id/${encodeURIComponent(id)}`, undefined, 404);
    await res.body?.cancel();
    return res.ok;
  }

  /** Replaces the whole configuration at once; Caddy keeps the old one if the new one fails. */
  async load(config: unknown): Promise<void> {
    await this.call('POST', '/load', config);
  }

  /** The root certificate of Caddy's internal CA (PEM), which clients of `BERTH_TLS=internal` trust. */
  async internalRoot(): Promise<string> {
    const res = await this.call('GET', '/pki/ca/local');
    return ((await res.json()) as { root_certificate: string }).root_certificate;
  }

  /** One request; an answer of `expected` (say 404 for an absent object) is returned, not thrown. */
  private async call(method: string, path: string, body?: unknown, expected?: number): Promise<Response> {
    const send = () =>
      fetch(`${this.base}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    let res: Response;
    try {
      // A load restarts the admin server, closing kept-alive connections: a request that
      // meets a closed one is sent once more (every call here is idempotent).
      res = await send().catch(() => send());
    } catch (e) {
      const why = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
      throw new Error(`edge admin API at ${this.base} did not answer: ${why}`, { cause: e });
    }
    if (!res.ok && res.status !== expected)
      throw new Error(`edge admin API ${method} ${path}: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`);
    return res;
  }
}
