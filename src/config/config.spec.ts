import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerOptions, plainOverNetwork, readEngineTls } from '../docker/docker-options';
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

describe('DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (as for the docker CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-certs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const tls = (extra: Record<string, string>) => () =>
    loadConfig({ ...base, DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir, ...extra });

  it('names each file it cannot read, and accepts the three once they are there', () => {
    expect(tls({})).toThrow(/DOCKER_CERT_PATH: .*ca\.pem \(ENOENT\), .*cert\.pem \(ENOENT\), .*key\.pem \(ENOENT\)/);
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), `${f}\n`);
    expect(tls({})().DOCKER_TLS_VERIFY).toBe(true);
    const options = dockerOptions('tcp://10.0.0.5:2376', readEngineTls(dir));
    expect(options).toMatchObject({ host: '10.0.0.5', port: 2376, protocol: 'https' });
    expect(String(options.cert)).toBe('cert.pem\n');
  });

  it('refuses an http:// engine with TLS asked for, for the host and for the nodes', () => {
    expect(tls({ DOCKER_HOST: 'http://10.0.0.5:2375' })).toThrow(/DOCKER_HOST: http:\/\/10\.0\.0\.5:2375 says plain HTTP/);
    expect(tls({ BERTH_ENGINE: 'swarm', BERTH_EDGE: 'caddy', BERTH_SWARM_NODE_ENGINE: 'http://{address}:2375' })).toThrow(
      /BERTH_SWARM_NODE_ENGINE: .* says plain HTTP/,
    );
    expect(() => loadConfig({ ...base, DOCKER_TLS_VERIFY: 'yes' })).toThrow(/DOCKER_TLS_VERIFY:/);
  });
});

describe('dockerOptions', () => {
  const tls = { ca: Buffer.from('ca'), cert: Buffer.from('cert'), key: Buffer.from('key'), path: '/x', stamp: '' };

  it('reaches tcp:// over TLS only when told to, https:// always, http:// never', () => {
    expect(dockerOptions('unix:///var/run/docker.sock', tls)).toEqual({ socketPath: '/var/run/docker.sock' });
    const none = { ca: undefined, cert: undefined, key: undefined };
    expect(dockerOptions('tcp://10.1.2.3:2375')).toEqual({ host: '10.1.2.3', port: 2375, protocol: 'http', ...none });
    expect(dockerOptions('tcp://10.1.2.3', tls)).toMatchObject({ host: '10.1.2.3', port: 2376, protocol: 'https', ca: tls.ca });
    expect(dockerOptions('https://engine.example:9000')).toEqual({ host: 'engine.example', port: 9000, protocol: 'https', ...none });
    // (config refuses http:// with DOCKER_TLS_VERIFY; given both here, plain HTTP is what was said)
    expect(dockerOptions('http://10.1.2.3:2375', tls)).toMatchObject({ host: '10.1.2.3', port: 2375, protocol: 'http' });
  });

  it('says when an engine is reached in the clear over a network', () => {
    expect(plainOverNetwork('tcp://10.1.2.3:2375')).toBe(true);
    expect(plainOverNetwork('tcp://10.1.2.3:2376', tls)).toBe(false);
    expect(plainOverNetwork('tcp://127.0.0.1:2375')).toBe(false);
    expect(plainOverNetwork('unix:///var/run/docker.sock')).toBe(false);
  });
});
