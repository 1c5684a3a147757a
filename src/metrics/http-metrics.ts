import { createServer, type Server } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { MetricsService } from './metrics.service';

/**
 * Express middleware timing every request, labelled with the route template Express matched
 * (`/v1/sites/:id`), never the path itself: ids would make the labels unbounded.
 */
export function timeRequests(metrics: MetricsService) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const end = metrics.httpDuration.startTimer();
    res.once('close', () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      // Apollo is mounted as middleware at /graphql, so Express names no route for it.
      const label = route ? `${req.baseUrl}${route}` : req.baseUrl === '/graphql' || req.path === '/graphql' ? '/graphql' : 'unmatched';
      end({ method: req.method, route: label, status: String(res.statusCode) });
    });
    next();
  };
}

/** Whether a proxy says it forwarded the request (so its loopback address is the proxy's, not the caller's). */
export function forwarded(headers: Record<string, string | string[] | undefined>): boolean {
  return headers['x-forwarded-for'] !== undefined || headers.forwarded !== undefined || headers['x-real-ip'] !== undefined;
}

/** GET /metrics on a port of its own, for the worker role (which has no HTTP server). */
export async function serveMetrics(metrics: MetricsService, port: number, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'GET' || req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      if (!metrics.mayRead(req.headers.authorization, req.socket.remoteAddress, forwarded(req.headers))) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('metrics need the metrics token or a caller on loopback\n');
        return;
      }
      const body = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body);
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}
