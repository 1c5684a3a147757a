import type Docker from 'dockerode';
import type { EngineTls } from '../common/engine-tls';

export { certPath, currentEngineTls, readEngineTls, type EngineTls } from '../common/engine-tls';

/**
 * dockerode's connection options from a DOCKER_HOST value: unix://, tcp:// (over TLS when
 * `tls` is given, as the docker CLI does with DOCKER_TLS_VERIFY), http:// (plain, said
 * outright) or https:// (TLS: with `tls`, its CA and client certificate; otherwise the
 * system's CAs and no client certificate).
 */
export function dockerOptions(host: string, tls?: EngineTls): Docker.DockerOptions {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  const secure = host.startsWith('https:') || (host.startsWith('tcp:') && tls !== undefined);
  // Said outright, even when absent: docker-modem would otherwise take them from the
  // process's own DOCKER_CERT_PATH, whatever DOCKER_TLS_VERIFY says.
  const material = { ca: tls?.ca, cert: tls?.cert, key: tls?.key };
  if (!secure) return { host: url.hostname, port: Number(url.port || 2375), protocol: 'http', ...material };
  return { host: url.hostname, port: Number(url.port || 2376), protocol: 'https', ...material };
}

/** Whether `host` is reached without TLS over a network (not a socket, not loopback). */
export function plainOverNetwork(host: string, tls?: EngineTls): boolean {
  if (host.startsWith('unix://') || dockerOptions(host, tls).protocol === 'https') return false;
  const name = new URL(host.replace(/^tcp:/, 'http:')).hostname;
  return !(name === 'localhost' || name === '[::1]' || name.startsWith('127.'));
}
