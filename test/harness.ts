import Docker from 'dockerode';
import request from 'supertest';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config/config';
import { startBerth, type Started } from '../src/app/bootstrap';
import { dockerOptions } from '../src/docker/docker.service';
import { TEST_ADMIN_KEY, testEnv } from './env';

export interface Harness {
  berth: Started;
  http: ReturnType<typeof request>;
  docker: Docker;
  admin: string;
  stop(): Promise<void>;
}

export async function startHarness(overrides: Record<string, string> = {}): Promise<Harness> {
  const berth = await startBerth(loadConfig(testEnv(overrides)));
  const http = request(berth.url as string);
  const docker = new Docker(dockerOptions(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'));
  return { berth, http, docker, admin: TEST_ADMIN_KEY, stop: () => berth.stop() };
}

export const auth = (key: string) => ({ Authorization: `Bearer ${key}` });

/** A slug no other test or run uses. */
export function uniqueSlug(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function gql<T = Record<string, unknown>>(
  h: Harness,
  key: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<{ data?: T; errors?: { message: string; extensions?: { code?: string } }[] }> {
  const res = await h.http.post('/graphql').set(key ? auth(key) : {}).send({ query, variables });
  return res.body as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
}

export async function createTenant(h: Harness, slug = uniqueSlug(), extra: Record<string, unknown> = {}) {
  const res = await h.http.post('/v1/tenants').set(auth(h.admin)).send({ slug, name: `Tenant ${slug}`, contactEmail: `ops@${slug}.example`, ...extra });
  if (res.status !== 201) throw new Error(`tenant creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  const key = await h.http.post(`/v1/tenants/${res.body.id}/api-keys`).set(auth(h.admin)).send({});
  if (key.status !== 201) throw new Error(`key creation failed: ${key.status} ${JSON.stringify(key.body)}`);
  return { tenant: res.body as { id: string; slug: string }, key: key.body.key as string, keyId: key.body.id as string };
}

/** Polls a job until it leaves QUEUED/RUNNING. */
export async function waitForJob(h: Harness, key: string, jobId: string, timeoutMs = 150_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await h.http.get(`/v1/jobs/${jobId}`).set(auth(key));
    if (res.status !== 200) throw new Error(`job read failed: ${res.status} ${JSON.stringify(res.body)}`);
    if (!['QUEUED', 'RUNNING'].includes(res.body.status)) return res.body as { status: string; error: string | null; steps: { name: string; status: string }[] };
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${res.body.status}: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
