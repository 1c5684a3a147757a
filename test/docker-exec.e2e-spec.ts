// @nestjs/common is ESM, which Jest cannot require; DockerService's decorators do nothing here.
jest.mock('@nestjs/common', () => jest.requireActual('./nest-common-stub'));
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import type { BerthConfig } from '../src/config/config';
import { dockerOptions } from '../src/docker/docker-options';
import { boundedCommand, DockerService } from '../src/docker/docker.service';
import { TEST_INSTANCE } from './env';
import { eventually } from './receivers';

// Every exec Berth runs (SQL, the WordPress install, a site's move) is bounded: killed inside
// the container at its deadline, given up on at once when its job step stops, and fed stdin
// by length, so that a stdin close the engine loses (containerd drops a CloseIO that arrives
// before the process has started) cannot leave it reading forever. On CI, seven installs of
// a 50-site burst hung that way: past their step's timeout, holding their sites' locks.

const docker = new Docker(dockerOptions(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'));
const service = new DockerService({
  DOCKER_HOST: process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock',
  BERTH_STEP_TIMEOUT_MS: 60_000,
} as BerthConfig);
/** Debian's coreutils (the base of Berth's images and of the official wordpress and mariadb images), and busybox (the stand-in's). */
const IMAGES = { debian: 'berth/debian:bookworm', busybox: 'berth/busybox:latest' } as const;
const names = Object.fromEntries(Object.keys(IMAGES).map((k) => [k, `${TEST_INSTANCE}-exec-${k}`])) as Record<keyof typeof IMAGES, string>;

/** The container's processes as the host sees them (no exec: that is what is under test). */
async function commands(name: string): Promise<string[]> {
  const top = (await docker.getContainer(name).top({ ps_args: '-o pid,args' })) as { Titles: string[]; Processes: string[][] };
  const args = top.Titles.indexOf('COMMAND');
  return top.Processes.map((p) => p[args]);
}

/** A raw exec whose stdin is written but never closed: what a lost CloseIO looks like to the command. */
async function execWithoutClose(name: string, cmd: string[], env: string[], stdin: string, waitMs: number) {
  const e = await docker.getContainer(name).exec({ Cmd: cmd, Env: env, AttachStdin: true, AttachStdout: true, AttachStderr: true });
  const stream = await e.start({ hijack: true, stdin: true });
  let out = '';
  const sink = new PassThrough().on('data', (c: Buffer) => (out += c.toString()));
  docker.modem.demuxStream(stream, sink, sink);
  stream.write(stdin);
  const ended = await Promise.race([
    new Promise<boolean>((r) => stream.on('end', () => r(true))),
    new Promise<boolean>((r) => setTimeout(() => r(false), waitMs)),
  ]);
  stream.destroy();
  return { ended, out };
}

beforeAll(async () => {
  for (const [k, image] of Object.entries(IMAGES)) {
    const name = names[k as keyof typeof IMAGES];
    await docker
      .getContainer(name)
      .remove({ force: true })
      .catch(() => undefined);
    const c = await docker.createContainer({ name, Image: image, Cmd: ['sleep', '86400'], HostConfig: { Init: true } });
    await c.start();
  }
});

afterAll(async () => {
  for (const name of Object.values(names))
    await docker
      .getContainer(name)
      .remove({ force: true })
      .catch(() => undefined);
});

describe.each(Object.keys(IMAGES) as (keyof typeof IMAGES)[])('DockerService.exec in %s', (kind) => {
  const name = names[kind];

  it('passes stdin by its exact length (multi-byte text included) to a command that reads to its end', async () => {
    const text = `${'é'.repeat(5000)}\n€ the end`;
    const res = await service.exec(name, ['sh', '-c', 'cat > /tmp/in; wc -c < /tmp/in; cat /tmp/in'], { stdin: text });
    expect(res.exitCode).toBe(0);
    const [count, ...rest] = res.stdout.split('\n');
    expect(Number(count.trim())).toBe(Buffer.byteLength(text));
    expect(rest.join('\n')).toBe(text);
  });

  it('a command whose stdin is never closed still ends, when it reads through the bounded form', async () => {
    const stdin = '{"title":"x"}';
    // Positive control: the same command, not bounded, is still reading when the close is lost.
    const plain = await execWithoutClose(name, ['sh', '-c', 'x=$(cat); echo "got $x"'], [], stdin, 3000);
    expect(plain.ended).toBe(false);
    const bounded = boundedCommand(['sh', '-c', 'x=$(cat); echo "got $x"'], 30_000, Buffer.byteLength(stdin));
    const fixed = await execWithoutClose(name, bounded.cmd, bounded.env, stdin, 30_000);
    expect(fixed).toEqual({ ended: true, out: `got ${stdin}\n` });
  });

  it('kills a command at its deadline inside the container', async () => {
    const marker = `sleep ${9000 + Math.floor(Math.random() * 999)}`;
    const started = Date.now();
    // coreutils' timeout kills the command's whole process group (sleep under its shell);
    // busybox's kills the command it started, so there the command is sleep itself.
    const cmd = kind === 'debian' ? ['sh', '-c', `${marker}; echo never`] : marker.split(' ');
    const run = service.exec(name, cmd, { timeoutMs: 4000 });
    // Positive control: the command is seen running before its deadline.
    await eventually(
      async () => ((await commands(name)).some((c) => c.includes(marker)) ? true : undefined),
      'the command to run',
      10_000,
      100,
    );
    const res = await run;
    expect(res.exitCode).toBe(137);
    expect(res.stdout).not.toContain('never');
    expect(Date.now() - started).toBeLessThan(4000 + 5000);
    expect((await commands(name)).filter((c) => c.includes(marker))).toEqual([]);
  });

  it('gives up at once when its signal aborts, and the command still ends at its deadline', async () => {
    const marker = `sleep ${8000 + Math.floor(Math.random() * 999)}`;
    const controller = new AbortController();
    const run = service.exec(name, ['sh', '-c', marker], { timeoutMs: 5000, signal: controller.signal });
    await eventually(
      async () => ((await commands(name)).some((c) => c.includes(marker)) ? true : undefined),
      'the command to run',
      10_000,
      100,
    );
    const abortedAt = Date.now();
    controller.abort(new Error('step stopped'));
    await expect(run).rejects.toThrow('step stopped');
    expect(Date.now() - abortedAt).toBeLessThan(1000);
    await eventually(
      async () => ((await commands(name)).some((c) => c.includes(marker)) ? undefined : true),
      'the command to be killed at its deadline',
      15_000,
      200,
    );
  });
});
