import { Inject, Injectable } from '@nestjs/common';
import Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { dockerOptions } from './docker-options';
import { followedLog } from './log-stream';

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export type ContainerInfo = Docker.ContainerInspectInfo;

const statusOf = (e: unknown) => (e as { statusCode?: number }).statusCode;
export const isNotFound = (e: unknown) => statusOf(e) === 404;
export const isConflict = (e: unknown) => statusOf(e) === 409;
const ignore =
  (...codes: number[]) =>
  (e: unknown) => {
    if (!codes.includes(statusOf(e) ?? 0)) throw e;
  };

/** The only place that talks to the Docker Engine. */
@Injectable()
export class DockerService {
  readonly docker: Docker;
  /** A pull gets half a job step, so a slow or unreachable registry fails the step clearly. */
  private readonly pullTimeoutMs: number;

  constructor(@Inject(BERTH_CONFIG) config: BerthConfig) {
    this.docker = new Docker(dockerOptions(config.DOCKER_HOST));
    this.pullTimeoutMs = Math.floor(config.BERTH_STEP_TIMEOUT_MS / 2);
  }

  async ping(): Promise<void> {
    await this.docker.ping();
  }

  async version(): Promise<string> {
    return (await this.docker.version()).Version;
  }

  async imageExists(ref: string): Promise<boolean> {
    return this.docker
      .getImage(ref)
      .inspect()
      .then(
        () => true,
        (e: unknown) => (isNotFound(e) ? false : Promise.reject(e)),
      );
  }

  /**
   * Makes sure an image is on the engine: inspected, else pulled within a bounded time.
   * Returns why it is not there (the pull's error), or undefined when it is.
   */
  async ensureImage(ref: string): Promise<string | undefined> {
    if (await this.imageExists(ref)) return undefined;
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.pullTimeoutMs} ms`)), this.pullTimeoutMs);
        }),
        (async () => {
          const stream = (await this.docker.pull(ref, { abortSignal: abort.signal })) as Readable;
          // The engine reports a failed pull inside the stream; followProgress surfaces it.
          await new Promise<void>((resolve, reject) =>
            this.docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve())),
          );
        })(),
      ]);
    } catch (e) {
      return `pull failed: ${(e as Error).message}`;
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    return (await this.imageExists(ref)) ? undefined : 'the pull finished without it';
  }

  async inspectContainer(name: string): Promise<ContainerInfo | undefined> {
    return this.docker
      .getContainer(name)
      .inspect()
      .catch((e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)));
  }

  async createContainer(options: Docker.ContainerCreateOptions): Promise<string> {
    return (await this.docker.createContainer(options)).id;
  }

  async startContainer(id: string): Promise<void> {
    await this.docker.getContainer(id).start().catch(ignore(304));
  }

  async stopContainer(id: string, timeoutSeconds = 10): Promise<void> {
    await this.docker.getContainer(id).stop({ t: timeoutSeconds }).catch(ignore(304, 404));
  }

  async restartContainer(id: string, timeoutSeconds = 10): Promise<void> {
    await this.docker.getContainer(id).restart({ t: timeoutSeconds });
  }

  /**
   * Removes a container with its anonymous volumes (an image's VOLUME that nothing was
   * mounted on). Named volumes, where sites and databases keep their data, are never removed
   * by this; only an explicit removeVolume does that.
   */
  async removeContainer(id: string): Promise<void> {
    await this.docker.getContainer(id).remove({ force: true, v: true }).catch(ignore(404));
  }

  async listContainers(labels: Record<string, string>): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({ all: true, filters: { label: labelFilter(labels) } });
  }

  async findNetworks(name: string): Promise<Docker.NetworkInspectInfo[]> {
    const found = await this.docker.listNetworks({ filters: { name: [name] } });
    return found.filter((n) => n.Name === name);
  }

  async listNetworks(labels: Record<string, string>): Promise<Docker.NetworkInspectInfo[]> {
    return this.docker.listNetworks({ filters: { label: labelFilter(labels) } });
  }

  async createNetwork(options: Docker.NetworkCreateOptions): Promise<string> {
    return (await this.docker.createNetwork(options)).id;
  }

  async removeNetwork(id: string): Promise<void> {
    await this.docker.getNetwork(id).remove().catch(ignore(404));
  }

  async inspectVolume(name: string): Promise<Docker.VolumeInspectInfo | undefined> {
    return this.docker
      .getVolume(name)
      .inspect()
      .catch((e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)));
  }

  async listVolumes(labels: Record<string, string>): Promise<Docker.VolumeInspectInfo[]> {
    const res = await this.docker.listVolumes({ filters: { label: labelFilter(labels) } });
    return res.Volumes ?? [];
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.docker.createVolume({ Name: name, Labels: labels });
  }

  async removeVolume(name: string): Promise<void> {
    await this.docker.getVolume(name).remove({ force: true }).catch(ignore(404));
  }

  /** The engine's event stream (newline-delimited JSON) from `since` (seconds). */
  async events(opts: { since: number; filters: Record<string, string[]> }): Promise<Readable> {
    return (await this.docker.getEvents({ since: opts.since, filters: opts.filters } as never)) as unknown as Readable;
  }

  /** Runs a command in a running container; env is passed out of band, never in argv. */
  async exec(container: string, cmd: string[], env: string[] = [], stdin?: string, user?: string): Promise<ExecResult> {
    const exec = await this.docker.getContainer(container).exec({
      Cmd: cmd,
      Env: env,
      ...(user ? { User: user } : {}),
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: stdin !== undefined,
    });
    const stream = await exec.start({ hijack: true, stdin: stdin !== undefined });
    const out = new PassThrough();
    const err = new PassThrough();
    const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
    out.on('data', (c: Buffer) => chunks.out.push(c));
    err.on('data', (c: Buffer) => chunks.err.push(c));
    this.docker.modem.demuxStream(stream, out, err);
    if (stdin !== undefined) stream.end(stdin);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    const info = await exec.inspect();
    return {
      exitCode: info.ExitCode ?? -1,
      stdout: Buffer.concat(chunks.out).toString('utf8'),
      stderr: Buffer.concat(chunks.err).toString('utf8'),
    };
  }

  /** The container's log as one text stream (stdout and stderr interleaved). */
  async logs(container: string, opts: { tail: number; follow: boolean }): Promise<Readable> {
    const c = this.docker.getContainer(container);
    const info = await c.inspect();
    const common = { stdout: true, stderr: true, tail: opts.tail, timestamps: true } as const;
    if (opts.follow) {
      const raw = (await c.logs({ ...common, follow: true })) as unknown as Readable;
      return followedLog(raw, info.Config.Tty, (r, stdout, stderr) => this.docker.modem.demuxStream(r, stdout, stderr));
    }
    const out = new PassThrough();
    const buf = await c.logs({ ...common, follow: false });
    out.end(info.Config.Tty ? buf : demuxBuffer(buf));
    return out;
  }
}

function labelFilter(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

/** Docker multiplexes non-TTY logs in frames: 8-byte header (stream, 0,0,0, size BE) + payload. */
export function demuxBuffer(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts);
}
