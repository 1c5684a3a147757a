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
export function viaEdge(root: string, hostname: string, path = '/', tls = true): Promise<EdgeAnswer> {
  return new Promise((resolve, reject) => {
    const options = {
      host: '127.0.0.1',
      port: tls ? EDGE_HTTPS_PORT : EDGE_HTTP_PORT,
      path,
      headers: { host: tls ? hostname : `${hostname}:${EDGE_HTTP_PORT}` },
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
