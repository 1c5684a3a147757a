import { subnetAt } from './subnets';

describe('subnetAt', () => {
  it('cuts consecutive subnets out of the pool', () => {
    expect(subnetAt('10.64.0.0/12', 24, 1)).toEqual({ subnet: '10.64.0.0/24', gateway: '10.64.0.1' });
    expect(subnetAt('10.64.0.0/12', 24, 2)).toEqual({ subnet: '10.64.1.0/24', gateway: '10.64.1.1' });
    expect(subnetAt('10.64.0.0/12', 24, 257)).toEqual({ subnet: '10.65.0.0/24', gateway: '10.65.0.1' });
    expect(subnetAt('10.64.0.0/12', 26, 2)).toEqual({ subnet: '10.64.0.64/26', gateway: '10.64.0.65' });
  });

  it('has room for thousands of tenants in the default pool', () => {
    expect(subnetAt('10.64.0.0/12', 24, 4096).subnet).toBe('10.79.255.0/24');
    expect(() => subnetAt('10.64.0.0/12', 24, 4097)).toThrow(/outside the pool/);
  });

  it('rejects an index below 1 and a prefix wider than the pool', () => {
    expect(() => subnetAt('10.64.0.0/12', 24, 0)).toThrow(/outside the pool/);
    expect(() => subnetAt('10.64.0.0/24', 16, 1)).toThrow(/larger than the pool/);
  });
});
