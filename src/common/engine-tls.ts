import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
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
  /** The files' modification times and sizes when read: a renewal changes it. */
  stamp: string;
}

/** How often the files are looked at again for a renewal (a stat of each, at most once a minute a directory). */
export const TLS_CHECK_MS = 60_000;

const FILES = ['ca.pem', 'cert.pem', 'key.pem'] as const;

/** DOCKER_CERT_PATH, or the docker CLI's default (~/.docker). */
export function certPath(dir: string | undefined): string {
  return dir ?? join(homedir(), '.docker');
}

/**
 * The TLS material from `dir`, read once per process (a node's engine is made on first use,
 * and every one shares the same files) and again by {@link currentEngineTls} once renewed.
 * Throws naming each file that cannot be read.
 */
export function readEngineTls(dir: string): EngineTls {
  let tls = cache.get(dir);
  if (!tls) {
    tls = readFiles(dir);
    cache.set(dir, tls);
  }
  return tls;
}

/**
 * The material in `dir` now. At most every TLS_CHECK_MS (or when `force`), the files' times
 * and sizes are looked at; changed (a renewed certificate), they are read again and taken
 * only if they make a valid identity (the key is the certificate's, each one parses):
 * otherwise the last good material stays and `problem` says why (a renewal half written is
 * taken at a later look, once whole).
 */
export function currentEngineTls(dir: string, options: { force?: boolean; now?: number } = {}): { tls: EngineTls; problem?: string } {
  const tls = readEngineTls(dir);
  const now = options.now ?? Date.now();
  if (!options.force && now - (checked.get(dir) ?? 0) < TLS_CHECK_MS) return { tls };
  checked.set(dir, now);
  try {
    if (stampOf(dir) === tls.stamp) return { tls };
    const fresh = readFiles(dir);
    createSecureContext({ ca: fresh.ca, cert: fresh.cert, key: fresh.key });
    cache.set(dir, fresh);
    return { tls: fresh };
  } catch (e) {
    return { tls, problem: (e as Error).message };
  }
}

function stampOf(dir: string): string {
  return FILES.map((f) => {
    const st = statSync(join(dir, f));
    return `${st.mtimeMs}:${st.size}`;
  }).join(' ');
}

function readFiles(dir: string): EngineTls {
  const read: Partial<Record<(typeof FILES)[number], Buffer>> = {};
  const missing: string[] = [];
  // The stamp first: a file renewed while being read changes it, so the next look reads again.
  let stamp = '';
  try {
    stamp = stampOf(dir);
  } catch {
    // the reads below name what is missing
  }
  for (const f of FILES) {
    try {
      read[f] = readFileSync(join(dir, f));
    } catch (e) {
      missing.push(`${join(dir, f)} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  }
  if (missing.length) throw new Error(`cannot read ${missing.join(', ')}`);
  return { ca: read['ca.pem']!, cert: read['cert.pem']!, key: read['key.pem']!, path: dir, stamp };
}

const cache = new Map<string, EngineTls>();
const checked = new Map<string, number>();
