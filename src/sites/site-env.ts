import { BerthError, ErrorCode } from '../common/errors';

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const RESERVED_ENV = /^WORDPRESS_DB_/;
export const MAX_ENV_ENTRIES = 64;
export const MAX_ENV_VALUE_BYTES = 8192;
export const MAX_ENV_TOTAL_BYTES = 32 * 1024;

/** Checks a site's extra environment; returns it unchanged or throws VALIDATION_FAILED saying what to fix. */
export function validateSiteEnv(env: unknown): Record<string, string> {
  if (env === undefined || env === null) return {};
  if (typeof env !== 'object' || Array.isArray(env)) throw invalid('env must be an object of NAME: "value" pairs');
  const entries = Object.entries(env as Record<string, unknown>);
  if (entries.length > MAX_ENV_ENTRIES) throw invalid(`env may hold at most ${MAX_ENV_ENTRIES} variables`);
  let total = 0;
  for (const [name, value] of entries) {
    if (!ENV_NAME.test(name))
      throw invalid(`env name "${name.slice(0, 64)}" is not valid: use letters, digits and _, not starting with a digit`);
    if (RESERVED_ENV.test(name)) throw invalid(`env name ${name} is reserved: Berth sets the WORDPRESS_DB_* variables itself`);
    if (typeof value !== 'string') throw invalid(`env ${name} must be a string`);
    if (value.includes('\0')) throw invalid(`env ${name} must not contain NUL characters`);
    const bytes = Buffer.byteLength(value);
    if (bytes > MAX_ENV_VALUE_BYTES) throw invalid(`env ${name} is ${bytes} bytes; at most ${MAX_ENV_VALUE_BYTES} are allowed`);
    total += bytes + name.length;
  }
  if (total > MAX_ENV_TOTAL_BYTES) throw invalid(`env totals ${total} bytes; at most ${MAX_ENV_TOTAL_BYTES} are allowed`);
  return env as Record<string, string>;
}

const invalid = (message: string) => new BerthError(ErrorCode.VALIDATION_FAILED, message);
