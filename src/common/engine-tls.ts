import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * What Berth presents to an Engine reached over TCP, and what it trusts: the docker CLI's own
 * DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), so the files an
 * operator's `docker` uses against a host are the ones Berth uses.
 */
export interface EngineTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** Where they were read from (for messages). */
  path: string;
}

const FILES = ['ca.pem', 'cert.pem', 'key.pem'] as const;

/** DOCKER_CERT_PATH, or the docker CLI's default (~/.docker). */
export function certPath(dir: string | undefined): string {
  return dir ?? join(homedir(), '.docker');
}

/**
 * The TLS material from `dir`, read once per process (a node's engine is made on first use,
 * and every one shares the same files). Throws naming each file that cannot be read.
 */
export function readEngineTls(dir: string): EngineTls {
  let tls = cache.get(dir);
  if (!tls) {
    const read: Partial<Record<(typeof FILES)[number], Buffer>> = {};
    const missing: string[] = [];
    for (const f of FILES) {
      try {
        read[f] = readFileSync(join(dir, f));
      } catch (e) {
        missing.push(`${join(dir, f)} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
    }
    if (missing.length) throw new Error(`cannot read ${missing.join(', ')}`);
    tls = { ca: read['ca.pem']!, cert: read['cert.pem']!, key: read['key.pem']!, path: dir };
    cache.set(dir, tls);
  }
  return tls;
}
const cache = new Map<string, EngineTls>();
