/** Cuts the index-th subnet of the given prefix length out of a pool such as 10.64.0.0/12. */
export function subnetAt(pool: string, prefix: number, index: number): { subnet: string; gateway: string } {
  const [base, bitsText] = pool.split('/');
  const poolBits = Number(bitsText);
  if (prefix < poolBits) throw new Error(`subnet prefix /${prefix} is larger than the pool ${pool}`);
  const capacity = 2 ** (prefix - poolBits);
  if (!Number.isInteger(index) || index < 1 || index > capacity) {
    throw new Error(`network index ${index} is outside the pool ${pool} (room for ${capacity} /${prefix} subnets)`);
  }
  const start = (toInt(base) & mask(poolBits)) >>> 0;
  const network = (start + (index - 1) * 2 ** (32 - prefix)) >>> 0;
  return { subnet: `${toIp(network)}/${prefix}`, gateway: toIp(network + 1) };
}

const mask = (bits: number) => (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0);
const toInt = (ip: string) => ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
const toIp = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
