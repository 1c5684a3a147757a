import { domainToASCII } from 'node:url';

/** Why a hostname cannot be a site's domain, or its canonical form (ASCII, lowercase, no trailing dot). */
export type HostnameCheck = { ok: true; hostname: string } | { ok: false; reason: string };

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Validates a hostname a tenant asks for: internationalised names become punycode
 * (`bücher.example` → `xn--bcher-kva.example`), at least two labels, each 1-63 letters,
 * digits or inner hyphens, 253 characters at most, no IP addresses, no wildcards unless
 * allowed, and nothing under the platform's own base domain.
 */
export function checkHostname(input: string, opts: { baseDomain: string; allowWildcards?: boolean }): HostnameCheck {
  const raw = input.trim().replace(/\.$/, '');
  if (raw.length === 0 || raw.length > 253) return { ok: false, reason: 'must be 1 to 253 characters' };
  const wildcard = raw.startsWith('*.');
  if (raw.includes('*') && !(wildcard && opts.allowWildcards && !raw.slice(2).includes('*')))
    return { ok: false, reason: opts.allowWildcards ? 'may hold * only as its whole first label' : 'may not be a wildcard' };
  const ascii = domainToASCII(wildcard ? raw.slice(2) : raw);
  if (!ascii) return { ok: false, reason: 'is not a valid domain name' };
  const labels = ascii.split('.');
  if (labels.length < 2) return { ok: false, reason: 'must have at least two labels, such as example.com' };
  if (!labels.every((l) => LABEL.test(l)))
    return { ok: false, reason: 'has a label that is empty, too long, or holds characters other than letters, digits and inner hyphens' };
  if (/^\d+$/.test(labels[labels.length - 1])) return { ok: false, reason: 'is an IP address, not a domain name' };
  const hostname = wildcard ? `*.${ascii}` : ascii;
  if (hostname.length > 253) return { ok: false, reason: 'is longer than 253 characters once encoded' };
  const base = opts.baseDomain.toLowerCase();
  if (ascii === base || ascii.endsWith(`.${base}`)) return { ok: false, reason: `is under ${base}, which is the platform's own` };
  return { ok: true, hostname };
}
