import { Resolver } from 'node:dns/promises';

/** The record a domain's owner creates to show control of it. */
export const challengeName = (hostname: string) => `_berth-challenge.${hostname.replace(/^\*\./, '')}`;

/**
 * Whether a TXT record `name` holds `token` (as one of its strings, or its strings joined),
 * asking `servers` (`ip` or `ip:port`; the system's resolvers when none). No record, no
 * answer or a DNS error is "not yet", never an exception: the caller asks again later.
 */
export async function txtHolds(name: string, token: string, servers: string[] = []): Promise<boolean> {
  const resolver = new Resolver({ timeout: 3000, tries: 2 });
  if (servers.length) resolver.setServers(servers);
  try {
    const records = await resolver.resolveTxt(name);
    return records.some((chunks) => chunks.join('') === token || chunks.includes(token));
  } catch {
    return false;
  }
}

/** `9.9.9.9, 127.0.0.1:5353` → ['9.9.9.9', '127.0.0.1:5353']. */
export const parseServers = (list?: string) =>
  (list ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
