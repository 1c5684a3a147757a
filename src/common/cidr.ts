import { BlockList, isIP } from 'node:net';

/** An IPv4 network: its address as an unsigned 32-bit number and its prefix length. */
export interface Ipv4Cidr {
  network: number;
  bits: number;
}

/**
 * Parses `10.64.0.0/12`; throws a message saying what is wrong: an octet past 255, a prefix
 * past 32, or an address that is not the first of its network (`10.64.0.1/12`), which would
 * otherwise be silently cut down to it.
 */
export function parseIpv4Cidr(text: string): Ipv4Cidr {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a CIDR such as 10.64.0.0/12`);
  const octets = m.slice(1, 5).map(Number);
  if (octets.some((o) => o > 255)) throw new Error(`"${text}": each part of the address is 0-255`);
  const bits = Number(m[5]);
  if (bits > 32) throw new Error(`"${text}": the prefix length is 0-32`);
  const address = octets.reduce((acc, o) => acc * 256 + o, 0);
  const network = (address & ipv4Mask(bits)) >>> 0;
  if (network !== address)
    throw new Error(`"${text}" is not the start of a /${bits} network (that would be ${ipv4ToString(network)}/${bits})`);
  return { network, bits };
}

export const ipv4Mask = (bits: number) => (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0);
export const ipv4ToString = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/** Parses "a.b.c.d/n, x::/n" into a BlockList; throws with the offending entry. */
export function parseNetworks(list: string): BlockList {
  const networks = new BlockList();
  for (const entry of list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(entry);
    const family = m ? isIP(m[1]) : 0;
    const prefix = m ? Number(m[2]) : -1;
    if (!m || !family || prefix > (family === 4 ? 32 : 128)) throw new Error(`"${entry}" is not a CIDR such as 10.0.0.0/8 or fd00::/8`);
    networks.addSubnet(m[1], prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return networks;
}
