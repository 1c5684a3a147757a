import { ConfigError, loadConfig } from './config';

const base = { DATABASE_URL: 'postgresql://u:p@127.0.0.1/db', REDIS_URL: 'redis://127.0.0.1:6379' };

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig(base);
    expect(c.BERTH_ROLE).toBe('all');
    expect(c.PORT).toBe(3000);
    expect(c.BERTH_PUBLISH_ADDRESS).toBe('127.0.0.1');
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ BERTH_ROLE: 'both' }, 'BERTH_ROLE'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ BERTH_ENCRYPTION_KEY: 'c2hvcnQ=' }, 'BERTH_ENCRYPTION_KEY'],
    [{ BERTH_SUBNET_POOL: '10.0.0.0' }, 'BERTH_SUBNET_POOL'],
  ])('names the variable that is wrong: %o', (bad, name) => {
    expect(() => loadConfig({ ...base, ...bad })).toThrow(new RegExp(`${name}:`));
  });

  it('names a missing required variable', () => {
    expect(() => loadConfig({ REDIS_URL: base.REDIS_URL })).toThrow(/DATABASE_URL: .*\(not set\)/);
  });

  it('requires an encryption key in production', () => {
    expect(() => loadConfig({ ...base, NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, NODE_ENV: 'production' })).toThrow(/BERTH_ENCRYPTION_KEY/);
    expect(loadConfig({ ...base, NODE_ENV: 'production', BERTH_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64') }).NODE_ENV).toBe(
      'production',
    );
  });
});

describe('BERTH_SUBNET_POOL and BERTH_SUBNET_PREFIX', () => {
  const pool =
    (BERTH_SUBNET_POOL: string, extra: Record<string, string> = {}) =>
    () =>
      loadConfig({ ...base, BERTH_SUBNET_POOL, ...extra });

  it('accepts a network address with a prefix the subnets fit in', () => {
    expect(pool('10.64.0.0/12')().BERTH_SUBNET_POOL).toBe('10.64.0.0/12');
    expect(pool('172.16.0.0/16', { BERTH_SUBNET_PREFIX: '16' })().BERTH_SUBNET_PREFIX).toBe(16);
    expect(pool('192.168.8.0/22', { BERTH_SUBNET_PREFIX: '26' })().BERTH_SUBNET_POOL).toBe('192.168.8.0/22');
  });

  it.each(['999.0.0.0/12', '10.256.0.0/16', '10.64.0.0/33', '10.64.0.0/40', '10.64.0/12', '10.64.0.0'])(
    'refuses %s, naming the variable',
    (bad) => {
      expect(pool(bad)).toThrow(/BERTH_SUBNET_POOL: /);
    },
  );

  it('refuses an address that is not the start of its network, saying which one is', () => {
    expect(pool('10.64.0.1/12')).toThrow(/BERTH_SUBNET_POOL: .*10\.64\.0\.0\/12/);
    expect(pool('10.65.0.0/12')).toThrow(/BERTH_SUBNET_POOL: .*not the start/);
  });

  it('refuses pools wider than /8 or narrower than the smallest subnet', () => {
    expect(pool('0.0.0.0/0')).toThrow(/BERTH_SUBNET_POOL: /);
    expect(pool('10.0.0.0/30')).toThrow(/BERTH_SUBNET_POOL: /);
  });

  it('refuses a subnet prefix shorter than the pool (no subnet would fit)', () => {
    expect(pool('10.64.0.0/24', { BERTH_SUBNET_PREFIX: '16' })).toThrow(/BERTH_SUBNET_PREFIX: .*BERTH_SUBNET_POOL/);
    expect(pool('10.64.0.0/20')().BERTH_SUBNET_PREFIX).toBe(24);
  });
});
