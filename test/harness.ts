import Docker from 'dockerode';
import request from 'supertest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import { dockerOptions } from '../src/docker/docker-options';
import { TEST_ADMIN_KEY, testEnv } from './env';

const root = join(__dirname, '..');

/** A Berth process started from the build (npm test compiles it first), as users run it. */
export interface BerthProcess {
  child: ChildProcessWithoutNullStreams;
  url?: string;
  output(): string;
  /** SIGTERM, then waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnBerth(env: NodeJS.ProcessEnv): BerthProcess {
  const child = spawn(process.execPath, [join(root, 'dist/main.js')], { cwd: root, env });
  let out = '';
  // BERTH_TEST_LOG=<file> keeps every Berth process's output for a failure's post-mortem.
  const keep = process.env.BERTH_TEST_LOG;
  const take = (c: Buffer) => {
    out += c.toString();
    if (keep) appendFileSync(keep, c);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    output: () => out,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Waits until the process prints a line matching pattern; returns the first group. */
export function waitForOutput(p: BerthProcess, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}: ${p.output()}`)), timeoutMs);
    const check = () => {
      const m = p.output().match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] ?? m[0]);
      }
    };
    p.child.stdout.on('data', check);
    p.child.stderr.on('data', check);
    p.child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Berth exited with ${code}: ${p.output()}`));
    });
    check();
  });
}

export interface Harness {
  berth: BerthProcess;
  http: ReturnType<typeof request>;
  docker: Docker;
  /** A pool, so the suites survive a PostgreSQL restart (the fault suite makes one). */
  db: Pool;
  admin: string;
  stop(): Promise<void>;
}

export async function startHarness(overrides: Record<string, string> = {}): Promise<Harness> {
  const berth = spawnBerth(testEnv(overrides));
  berth.url = await waitForOutput(berth, /listening on (http:\/\/\S+)/);
  const db = new Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
  db.on('error', () => undefined); // a dropped idle connection is replaced on the next query
  return {
    berth,
    http: request(berth.url),
    docker: new Docker(dockerOptions(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock')),
    db,
    admin: TEST_ADMIN_KEY,
    stop: async () => {
      await db.end();
      const code = await berth.stop();
      if (code !== 0) throw new Error(`Berth exited with ${code}: ${berth.output().slice(-4000)}`);
    },
  };
}

export const auth = (key: string) => ({ Authorization: `Bearer ${key}` });

/** A slug no other test or run uses. */
export function uniqueSlug(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export interface GqlResult<T> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export async function gql<T = Record<string, unknown>>(
  h: Harness,
  key: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GqlResult<T>> {
  const res = await h.http
    .post('/graphql')
    .set(key ? auth(key) : {})
    .send({ query, variables });
  return res.body as GqlResult<T>;
}

export async function createTenant(h: Harness, slug = uniqueSlug(), extra: Record<string, unknown> = {}) {
  const res = await h.http
    .post('/v1/tenants')
    .set(auth(h.admin))
    .send({ slug, name: `Tenant ${slug}`, contactEmail: `ops@${slug}.example`, ...extra });
  if (res.status !== 201) throw new Error(`tenant creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  const key = await h.http.post(`/v1/tenants/${res.body.id}/api-keys`).set(auth(h.admin)).send({});
  if (key.status !== 201) throw new Error(`key creation failed: ${key.status} ${JSON.stringify(key.body)}`);
  return { tenant: res.body as { id: string; slug: string }, key: key.body.key as string, keyId: key.body.id as string };
}

export interface JobBody {
  id: string;
  status: string;
  kind: string;
  error: string | null;
  attempts: number;
  steps: { name: string; status: string; error?: string; detail?: string }[];
  startedAt?: string | null;
  finishedAt?: string | null;
}

/** Polls a job until it leaves QUEUED/RUNNING. */
export async function waitForJob(h: Harness, key: string, jobId: string, timeoutMs = 150_000): Promise<JobBody> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await h.http.get(`/v1/jobs/${jobId}`).set(auth(key));
    if (res.status !== 200) throw new Error(`job read failed: ${res.status} ${JSON.stringify(res.body)}`);
    if (!['QUEUED', 'RUNNING'].includes(res.body.status)) return res.body as JobBody;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${res.body.status}: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs a command in a container (optionally as a user) and returns its exit code and output. */
export async function exec(
  docker: Docker,
  container: string,
  cmd: string[],
  user?: string,
  env?: string[],
): Promise<{ code: number; out: string }> {
  const e = await docker
    .getContainer(container)
    .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, ...(user ? { User: user } : {}), ...(env ? { Env: env } : {}) });
  const stream = await e.start({ hijack: true, stdin: false });
  const sink = new PassThrough();
  let out = '';
  sink.on('data', (c: Buffer) => (out += c.toString()));
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise((r) => stream.on('end', r));
  const info = await e.inspect();
  return { code: info.ExitCode ?? -1, out };
}

/** A container's environment as an object. */
export const envOf = (info: Docker.ContainerInspectInfo): Record<string, string> =>
  Object.fromEntries(info.Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
