import { ipv4ToString, parseIpv4Cidr } from '../common/cidr';

/** Cuts the index-th subnet of the given prefix length out of a pool such as 10.64.0.0/12. */
export function subnetAt(pool: string, prefix: number, index: number): { subnet: string; gateway: string } {
  const { network: start, bits: poolBits } = parseIpv4Cidr(pool);
  if (prefix < poolBits) throw new Error(`subnet prefix /${prefix} is larger than the pool ${pool}`);
  const capacity = 2 ** (prefix - poolBits);
  if (!Number.isInteger(index) || index < 1 || index > capacity) {
    throw new Error(`network index ${index} is outside the pool ${pool} (room for ${capacity} /${prefix} subnets)`);
  }
  const network = (start + (index - 1) * 2 ** (32 - prefix)) >>> 0;
  return { subnet: `${ipv4ToString(network)}/${prefix}`, gateway: ipv4ToString(network + 1) };
}
