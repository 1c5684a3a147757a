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
    expect(loadConfig({ ...base, NODE_ENV: 'production', BERTH_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64') }).NODE_ENV).toBe('production');
  });
});
