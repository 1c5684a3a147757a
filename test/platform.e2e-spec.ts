import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { spawnBerth, startHarness, waitForOutput, type Harness } from './harness';
import { testEnv } from './env';

const root = join(__dirname, '..');

describe('health', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.stop();
  });

  it('GET /healthz answers without a key', async () => {
    const res = await h.http.get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers ready when PostgreSQL, Redis and Docker Engine all answer', async () => {
    const res = await h.http.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', down: [] });
  });

  it('serves the OpenAPI document at /docs', async () => {
    const res = await h.http.get('/docs-json');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining(['/v1/tenants', '/v1/sites', '/v1/sites/{id}/logs', '/v1/jobs/{id}']),
    );
  });
});

describe('readiness with a dependency down', () => {
  it('answers 503 naming only Docker when the engine is unreachable, and logs why for the operator', async () => {
    const h = await startHarness({ DOCKER_HOST: 'unix:///nonexistent/docker.sock', BERTH_ROLE: 'api' });
    try {
      const res = await h.http.get('/readyz');
      expect(res.status).toBe(503);
      // Unauthenticated callers learn what is down, not the engine's address or the driver's error.
      expect(res.body).toEqual({ status: 'unavailable', down: ['docker'] });
      expect(res.text).not.toMatch(/nonexistent|ENOENT|sock/);
      await waitForOutput(h.berth, /readyz: docker is down: .*\/nonexistent\/docker\.sock/, 10_000);
    } finally {
      await h.stop();
    }
  });
});

describe('process', () => {
  it('stops at start-up with a message naming a bad variable', async () => {
    const berth = spawnBerth(testEnv({ PORT: 'not-a-port' }));
    const code = await new Promise<number | null>((r) => berth.child.on('exit', r));
    expect(code).toBe(2);
    expect(berth.output()).toMatch(/PORT: .*number/i);
  });

  it('runs api and worker roles as separate processes and shuts down on SIGTERM', async () => {
    const api = spawnBerth(testEnv({ BERTH_ROLE: 'api', PORT: '0' }));
    const worker = spawnBerth(testEnv({ BERTH_ROLE: 'worker' }));
    const url = await waitForOutput(api, /listening on (http:\/\/\S+)/);
    await waitForOutput(worker, /\(worker\) started/);
    const res = await request(url).get('/healthz');
    expect(res.status).toBe(200);
    expect(await Promise.all([api.stop('SIGTERM'), worker.stop('SIGTERM')])).toEqual([0, 0]);
    expect(api.output()).toMatch(/SIGTERM: finishing running jobs/);
  });
});

describe('docker-compose.yml', () => {
  it('is a valid Compose file describing Berth, PostgreSQL, Redis and the Docker socket', () => {
    const env = {
      ...process.env,
      BERTH_ADMIN_KEY: 'berth_compose-check-key-0123456789abcdef',
      BERTH_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64'),
      POSTGRES_PASSWORD: 'compose-check-postgres',
      BERTH_REDIS_PASSWORD: 'compose-check-redis',
    };
    const out = execFileSync('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config'], { encoding: 'utf8', env });
    expect(out).toMatch(/postgres/);
    expect(out).toMatch(/redis/);
    expect(out).toMatch(/\/var\/run\/docker\.sock/);
    expect(out).toMatch(/berth/);
  });

  it('refuses to start without the admin and encryption keys and the PostgreSQL and Redis passwords', () => {
    const full = {
      BERTH_ADMIN_KEY: 'berth_compose-check-key-0123456789abcdef',
      BERTH_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64'),
      POSTGRES_PASSWORD: 'compose-check-postgres',
      BERTH_REDIS_PASSWORD: 'compose-check-redis',
    };
    for (const missing of Object.keys(full)) {
      const env = { ...process.env, ...full, [missing]: '' };
      expect(() => execFileSync('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config'], { env, stdio: 'pipe' })).toThrow(
        new RegExp(`set ${missing}`),
      );
    }
  });
});
