import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { edgeFetch } from './edge-client';
import { exec } from './harness';
import { eventually } from './receivers';

/**
 * docker-compose.yml deployed for real with Debian's docker-compose 1.29: Berth's image built
 * from this repository (on berth/node:20, no registry), its edge, PostgreSQL and Redis from
 * the local images scripts/test.sh builds, and the real WordPress and MariaDB images. A
 * tenant and a site are created through the deployed API, and the installed site is fetched
 * over HTTPS through the deployed edge. Everything it made is removed afterwards.
 */

const run = promisify(execFile);
const slot = Number(process.env.BERTH_TEST_SLOT ?? 0);
const project = `berth-compose-test${slot}`;
const instance = `compose${slot}`;
const ports = { api: 3400 + slot, postgres: 5440 + slot, redis: 6390 + slot, admin: 2219 + slot, http: 18180 + slot, https: 18543 + slot };
const adminKey = `berth_compose-${randomBytes(16).toString('hex')}`;
const api = `http://127.0.0.1:${ports.api}`;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });

const env = {
  ...process.env,
  COMPOSE_PROJECT_NAME: project,
  // The classic builder: it never asks a registry for local FROM images.
  DOCKER_BUILDKIT: '0',
  COMPOSE_DOCKER_CLI_BUILD: '0',
  BERTH_ADMIN_KEY: adminKey,
  BERTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  POSTGRES_PASSWORD: randomBytes(18).toString('hex'),
  BERTH_REDIS_PASSWORD: randomBytes(18).toString('hex'),
  BERTH_IMAGE: `berth:compose-test${slot}`,
  BERTH_NODE_IMAGE: 'berth/node:20',
  BERTH_POSTGRES_IMAGE: 'berth/postgres:15',
  BERTH_REDIS_IMAGE: 'berth/redis:7',
  BERTH_CADDY_IMAGE: 'berth/caddy:2',
  BERTH_WORDPRESS_IMAGE: 'berth/wordpress:6.1',
  BERTH_DB_IMAGE: 'berth/mariadb:10.11',
  BERTH_INSTANCE: instance,
  BERTH_PORT: String(ports.api),
  BERTH_POSTGRES_PORT: String(ports.postgres),
  BERTH_REDIS_PORT: String(ports.redis),
  BERTH_EDGE_ADMIN_PORT: String(ports.admin),
  BERTH_EDGE_HTTP_PORT: String(ports.http),
  BERTH_EDGE_HTTPS_PORT: String(ports.https),
  BERTH_BASE_DOMAIN: `compose${slot}.berth.localhost`,
  BERTH_SUBNET_POOL: `10.${100 + slot}.0.0/16`,
  BERTH_PORT_RANGE: `${28000 + slot * 200}-${28199 + slot * 200}`,
};
const compose = (...args: string[]) =>
  run('docker-compose', ['-f', join(__dirname, '..', 'docker-compose.yml'), ...args], { env, maxBuffer: 64 * 1024 * 1024 });

async function call(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Whatever this deployment made on the engine: its stack and its sites' objects. */
async function removeEverything(): Promise<void> {
  await compose('down', '--volumes', '--remove-orphans', '--timeout', '5').catch(() => undefined);
  const filters = { label: [`berth.instance=${instance}`] };
  for (const c of await docker.listContainers({ all: true, filters })) await docker.getContainer(c.Id).remove({ force: true, v: true });
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) await docker.getVolume(v.Name).remove({ force: true });
  for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove();
}

beforeAll(async () => {
  await removeEverything();
  // Builds Berth's image from this repository (npm ci and tsc inside), then starts the stack.
  await compose('up', '-d', '--build');
}, 900_000);

afterAll(async () => {
  const logs = await compose('logs', '--no-color', '--tail', '80', 'berth').catch((e: Error) => ({ stdout: e.message }));
  if (process.env.BERTH_COMPOSE_LOGS) process.stdout.write(logs.stdout);
  await removeEverything();
}, 300_000);

describe('the docker-compose deployment', () => {
  it('provisions a site through its API and serves it, installed, over HTTPS through its edge', async () => {
    await eventually(async () => (await fetch(`${api}/readyz`)).ok || undefined, 'the deployed Berth to be ready', 180_000, 1000);
    const stack = await docker.listContainers({ filters: { label: [`com.docker.compose.project=${project}`] } });
    expect(stack.map((c) => c.Labels['com.docker.compose.service']).sort()).toEqual(['berth', 'edge', 'postgres', 'redis']);
    // Redis on the host's loopback wants its password: an unauthenticated client is refused.
    const redis = stack.find((c) => c.Labels['com.docker.compose.service'] === 'redis')!;
    const { out } = await exec(docker, redis.Id, ['redis-cli', 'ping']);
    expect(out).toMatch(/NOAUTH/);

    const tenant = await call('POST', '/v1/tenants', adminKey, { slug: 'acme', name: 'Acme', contactEmail: 'ops@acme.example' });
    expect(tenant.status).toBe(201);
    const key = await call('POST', `/v1/tenants/${tenant.body.id as string}/api-keys`, adminKey, {});
    expect(key.status).toBe(201);
    const tenantKey = key.body.key as string;
    const title = `Compose ${randomBytes(3).toString('hex')}`;
    const created = await call('POST', '/v1/sites', tenantKey, {
      name: 'blog',
      wordpress: { title, adminUser: 'jane', adminEmail: 'jane@acme.example', adminPassword: `pw-${randomBytes(12).toString('hex')}` },
    });
    expect(created.status).toBe(202);
    const jobId = (created.body.job as { id: string }).id;
    const job = await eventually(
      async () => {
        const j = await call('GET', `/v1/jobs/${jobId}`, tenantKey);
        return ['QUEUED', 'RUNNING'].includes(j.body.status as string) ? undefined : j.body;
      },
      'the site job to finish',
      300_000,
      1000,
    );
    expect(job).toMatchObject({ status: 'SUCCEEDED', error: null });
    const site = (await call('GET', `/v1/sites/${(created.body.site as { id: string }).id}`, tenantKey)).body;
    expect(site).toMatchObject({ status: 'RUNNING', publicUrl: `https://blog-acme.compose${slot}.berth.localhost:${ports.https}/` });

    // Through the deployed edge, trusting only its own CA.
    const root = ((await (await fetch(`http://127.0.0.1:${ports.admin}/pki/ca/local`)).json()) as { root_certificate: string })
      .root_certificate;
    const front = await edgeFetch(root, site.publicUrl as string);
    expect(front.status).toBe(200);
    expect((await front.text()).match(/<title>([^<]*)<\/title>/)?.[1]).toBe(title);
    expect((await edgeFetch(root, new URL('/wp-admin/install.php', site.publicUrl as string))).status).toBe(404);
    // Plain HTTP on the edge redirects to HTTPS.
    const plain = await edgeFetch(root, `http://blog-acme.compose${slot}.berth.localhost:${ports.http}/x`);
    expect(plain.status).toBe(308);
    expect(plain.headers.get('location')).toBe(`https://blog-acme.compose${slot}.berth.localhost:${ports.https}/x`);
  }, 600_000);
});
