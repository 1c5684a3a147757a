import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { EDGE_HTTP_PORT, EDGE_HTTPS_PORT } from './env';

/** The real edge of this test slot (Caddy, started by scripts/test.sh). */
export const EDGE_ADMIN = process.env.BERTH_EDGE_ADMIN_URL as string;

export interface EdgeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The root certificate of the edge's internal CA, which the test's requests trust (and nothing else). */
export async function edgeRoot(): Promise<string> {
  return ((await (await fetch(`${EDGE_ADMIN}/pki/ca/local`)).json()) as { root_certificate: string }).root_certificate;
}

/** A request to the edge on loopback as a browser would make it for `hostname`: SNI and Host, trusting only the edge's CA. */
export function viaEdge(root: string, hostname: string, path = '/', tls = true, extra: Record<string, string> = {}): Promise<EdgeAnswer> {
  return new Promise((resolve, reject) => {
    const options = {
      host: '127.0.0.1',
      port: tls ? EDGE_HTTPS_PORT : EDGE_HTTP_PORT,
      path,
      headers: { host: tls ? hostname : `${hostname}:${EDGE_HTTP_PORT}`, ...extra },
      timeout: 5000,
      ...(tls ? { servername: hostname, ca: root } : {}),
    };
    const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Caddy's admin API; every change restarts it, closing kept-alive connections: a request that meets one is sent again. */
export function edgeAdmin(method: string, path: string, body?: unknown): Promise<Response> {
  const send = () =>
    fetch(`${EDGE_ADMIN}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  return send().catch(() => send());
}

/**
 * fetch() for a URL the edge serves, as a browser would reach it: connects to the edge on
 * loopback (the URL's port), with the URL's host as Host and SNI, trusting only the edge's CA.
 * Never follows redirects. Answers a standard Response.
 */
export async function edgeFetch(root: string, url: string | URL, init: RequestInit = {}): Promise<Response> {
  const target = new URL(url);
  const outgoing = new Request(target, { method: init.method ?? 'GET', headers: init.headers, body: init.body });
  const body = outgoing.body ? Buffer.from(await outgoing.arrayBuffer()) : undefined;
  const headers: Record<string, string> = { host: target.host };
  outgoing.headers.forEach((v, k) => (headers[k] = v));
  if (body) headers['content-length'] = String(body.length);
  const tls = target.protocol === 'https:';
  const answer = await new Promise<{ status: number; raw: string[]; body: Buffer }>((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      {
        host: '127.0.0.1',
        port: Number(target.port || (tls ? 443 : 80)),
        method: outgoing.method,
        path: `${target.pathname}${target.search}`,
        headers,
        timeout: 30_000,
        ...(tls ? { servername: target.hostname, ca: root } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, raw: res.rawHeaders, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${outgoing.method} ${target.href}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
  const out = new Headers();
  for (let i = 0; i < answer.raw.length; i += 2) out.append(answer.raw[i], answer.raw[i + 1]);
  return new Response([204, 304].includes(answer.status) ? null : answer.body, { status: answer.status, headers: out });
}
