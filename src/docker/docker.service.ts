import { Inject, Injectable, Logger } from '@nestjs/common';
import Docker from 'dockerode';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { certPath, currentEngineTls, dockerOptions, plainOverNetwork, readEngineTls, type EngineTls } from './docker-options';
import { followedLog } from './log-stream';
import { noteEngineCall } from '../common/engine-calls';

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export type ContainerInfo = Docker.ContainerInspectInfo;

/** The parts of a Swarm node (GET /nodes) Berth reads. */
export interface SwarmNode {
  ID: string;
  Version: { Index: number };
  Spec: { Labels?: Record<string, string>; Role: 'worker' | 'manager'; Availability: 'active' | 'pause' | 'drain'; Name?: string };
  Description: { Hostname: string; Resources: { NanoCPUs: number; MemoryBytes: number } };
  Status: { State: 'unknown' | 'down' | 'ready' | 'disconnected'; Addr?: string; Message?: string };
  ManagerStatus?: { Leader?: boolean; Reachability?: string; Addr?: string };
}

/**
 * Where a node's own engine is reached: its address as Swarm reports it, or, for a manager
 * that reports 0.0.0.0 (it listens on every address), the address it advertises.
 */
export function nodeAddress(node: SwarmNode | undefined): string | undefined {
  return node?.Status.Addr === '0.0.0.0' ? node.ManagerStatus?.Addr?.replace(/:\d+$/, '') : node?.Status.Addr;
}

export interface ExecOptions {
  /** NAME=value pairs for the command's environment (secrets go here, never in argv). */
  env?: string[];
  /** Given to the command on its stdin, which it reads by length (see {@link DockerService.exec}). */
  stdin?: string;
  /** Streamed to the command's stdin instead (a dump to import): exactly `bytes` of it are read. */
  input?: { stream: Readable; bytes: number };
  /** The command's stdout goes here as it comes, instead of into the result (a dump to a file). */
  stdout?: Writable;
  /** user or user:group inside the container. */
  user?: string;
  /** How long the command may run (default: a job step's timeout). */
  timeoutMs?: number;
  /** Aborting it gives up on the command at once (its `timeout` inside the container still ends it). */
  signal?: AbortSignal;
}

/**
 * What an exec really runs: the command under `timeout -s KILL` when the image has one
 * (coreutils' and busybox's both take this form; coreutils' kills the command's whole process
 * group), else as it is; given stdin, the command reads exactly `stdinBytes` of it through
 * `head -c`, so it never depends on the stdin's close reaching it.
 */
export function boundedCommand(cmd: string[], timeoutMs: number, stdinBytes?: number): { cmd: string[]; env: string[] } {
  const env = [`BERTH_EXEC_SECONDS=${Math.max(1, Math.ceil(timeoutMs / 1000))}`];
  let argv = cmd;
  if (stdinBytes !== undefined) {
    env.push(`BERTH_STDIN_BYTES=${stdinBytes}`);
    argv = ['sh', '-c', 'head -c "$BERTH_STDIN_BYTES" | "$@"', 'berth-stdin', ...argv];
  }
  const deadline = 'if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL "$BERTH_EXEC_SECONDS" "$@"; fi; exec "$@"';
  return { cmd: ['sh', '-c', deadline, 'berth-exec', ...argv], env };
}

/** How long after the command's own deadline the call gives up waiting for its end. */
const EXEC_GRACE_MS = 5000;

const statusOf = (e: unknown) => (e as { statusCode?: number }).statusCode;
export const isNotFound = (e: unknown) => statusOf(e) === 404;
export const isConflict = (e: unknown) => statusOf(e) === 409;
const ignore =
  (...codes: number[]) =>
  (e: unknown) => {
    if (!codes.includes(statusOf(e) ?? 0)) throw e;
  };

/** Options dockerode must send as the body only (its POST paths ending in `?` also serialise them into the URL). */
const asBody = <T extends object>(body: T) => ({ _query: {}, _body: body }) as unknown as T;

/** The parts of a Swarm task (GET /tasks) Berth reads. */
export interface SwarmTask {
  ID: string;
  NodeID?: string;
  CreatedAt: string;
  DesiredState: string;
  Status: { State: string; Err?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
  NetworksAttachments?: { Network: { Spec: { Name: string } }; Addresses: string[] }[];
  /** The service's task template as it was when the task was made. */
  Spec?: { ContainerSpec?: { Labels?: Record<string, string> }; ForceUpdate?: number; Placement?: { Constraints?: string[] } };
}

/** Engines already warned about (a Swarm node's engine is made again after a restart). */
const warned = new Set<string>();
/** TLS renewals already warned about (per directory and problem). */
const tlsProblems = new Set<string>();

/** The only place that talks to the Docker Engine. */
@Injectable()
export class DockerService {
  readonly docker: Docker;
  /** A pull gets half a job step, so a slow or unreachable registry fails the step clearly. */
  private readonly pullTimeoutMs: number;
  /** An exec gets a whole job step unless its caller says otherwise. */
  private readonly execTimeoutMs: number;

  /** The TLS material in use, and where it is renewed (TLS to a tcp:// engine only). */
  private tls?: EngineTls;
  private readonly tlsDir?: string;

  constructor(@Inject(BERTH_CONFIG) config: BerthConfig) {
    const tls = config.DOCKER_TLS_VERIFY ? readEngineTls(certPath(config.DOCKER_CERT_PATH)) : undefined;
    const options = dockerOptions(config.DOCKER_HOST, tls);
    this.docker = new Docker(options);
    if (tls && options.protocol === 'https') {
      this.tls = tls;
      this.tlsDir = tls.path;
    }
    if (plainOverNetwork(config.DOCKER_HOST, tls) && !warned.has(config.DOCKER_HOST)) {
      warned.add(config.DOCKER_HOST);
      new Logger('Docker').warn(
        `the Docker Engine at ${config.DOCKER_HOST} is reached without TLS: whoever reaches that port is root on its host (set DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)`,
      );
    }
    // Every Engine API call goes through the modem's dial: counted for the job step it serves.
    const modem = this.docker.modem as { dial: (options: { method: string; path: string }, cb: unknown) => unknown };
    const dial = modem.dial.bind(modem);
    modem.dial = (options, cb) => {
      noteEngineCall(options.method, options.path);
      if (this.tlsDir) this.reloadTls();
      return dial(options, cb);
    };
    this.pullTimeoutMs = Math.floor(config.BERTH_STEP_TIMEOUT_MS / 2);
    this.execTimeoutMs = config.BERTH_STEP_TIMEOUT_MS;
  }

  async ping(): Promise<void> {
    await this.docker.ping();
  }

  /**
   * Takes renewed TLS material (DOCKER_CERT_PATH's files changed) for the calls that follow,
   * once it is a valid identity: looked at before a call at most once a minute (`force`: now).
   * True when it changed. A renewal that is not valid is said once, and the material in use stays.
   */
  reloadTls(force = false): boolean {
    if (!this.tlsDir || !this.tls) return false;
    const { tls, problem } = currentEngineTls(this.tlsDir, { force });
    if (problem && !tlsProblems.has(`${this.tlsDir}:${problem}`)) {
      tlsProblems.add(`${this.tlsDir}:${problem}`);
      new Logger('Docker').warn(`TLS material in ${this.tlsDir} changed but is not taken: ${problem}`);
    }
    if (tls === this.tls) return false;
    Object.assign(this.docker.modem, { ca: tls.ca, cert: tls.cert, key: tls.key });
    this.tls = tls;
    new Logger('Docker').log(`TLS material in ${this.tlsDir} read again (renewed): used from the next call`);
    return true;
  }

  /** The CPUs the engine's host has (`docker info`'s NCPU). */
  async cpus(): Promise<number> {
    return Number(((await this.docker.info()) as { NCPU?: number }).NCPU);
  }

  async version(): Promise<string> {
    return (await this.docker.version()).Version;
  }

  /** The Swarm's nodes (the engine must be a manager; 503 from the engine otherwise). */
  async listNodes(): Promise<SwarmNode[]> {
    return (await this.docker.listNodes()) as SwarmNode[];
  }

  /**
   * Sets (or, with undefined, removes) labels of a Swarm node, keeping the rest of its spec.
   * The update names the version it read, so a concurrent change fails rather than is lost.
   */
  async setNodeLabels(id: string, labels: Record<string, string | undefined>): Promise<void> {
    const node = this.docker.getNode(id);
    const info = (await node.inspect()) as SwarmNode;
    const next = { ...(info.Spec.Labels ?? {}) };
    for (const [k, v] of Object.entries(labels)) {
      if (v === undefined) delete next[k];
      else next[k] = v;
    }
    // dockerode sends `_query` as the query string and `_body` as the body (given plainly,
    // the spec would also be serialised into the URL).
    await node.update({ _query: { version: info.Version.Index }, _body: { ...info.Spec, Labels: next } });
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
    // As `_body`: given plainly, dockerode would also put the whole spec in the query string.
    return (await this.docker.createNetwork(asBody(options))).id;
  }

  /** A Swarm service by name (the engine must be a manager), or undefined. */
  async inspectService(name: string): Promise<Docker.Service | undefined> {
    return this.docker
      .getService(name)
      .inspect()
      .then(
        (s: Docker.Service) => s,
        (e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)),
      );
  }

  async createService(spec: Docker.ServiceSpec): Promise<string> {
    return ((await this.docker.createService(spec)) as { id: string }).id;
  }

  /** Replaces a service's spec; `version` is the one read, so a concurrent change fails rather than is lost. */
  async updateService(id: string, version: number, spec: Docker.ServiceSpec): Promise<void> {
    await this.docker.getService(id).update({ _query: { version }, _body: spec } as never);
  }

  async removeService(id: string): Promise<void> {
    await this.docker.getService(id).remove().catch(ignore(404));
  }

  async listServices(labels: Record<string, string>): Promise<Docker.Service[]> {
    return this.docker.listServices({ filters: { label: labelFilter(labels) } });
  }

  /** The tasks of a service, newest first. */
  async serviceTasks(service: string): Promise<SwarmTask[]> {
    const tasks = (await this.docker.listTasks({ filters: { service: [service] } })) as SwarmTask[];
    return tasks.sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt));
  }

  async listSecrets(labels: Record<string, string>): Promise<Docker.Secret[]> {
    return (await this.docker.listSecrets({ filters: { label: labelFilter(labels) } })) as Docker.Secret[];
  }

  /** The id of the Docker secret named `name`, or undefined. */
  async secretId(name: string): Promise<string | undefined> {
    const found = (await this.docker.listSecrets({ filters: { name: [name] } })) as { ID: string; Spec?: { Name?: string } }[];
    return found.find((s) => s.Spec?.Name === name)?.ID;
  }

  /** Creates the Docker secret; returns its id. */
  async createSecret(name: string, labels: Record<string, string>, value: string): Promise<string> {
    const secret: Docker.Secret = await this.docker.createSecret(
      asBody({ Name: name, Labels: labels, Data: Buffer.from(value).toString('base64') }),
    );
    return secret.id;
  }

  async removeSecret(id: string): Promise<void> {
    await this.docker.getSecret(id).remove().catch(ignore(404));
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

  /** Volumes with these labels; `signal` abandons the call (an engine that does not answer). */
  async listVolumes(labels: Record<string, string>, signal?: AbortSignal): Promise<Docker.VolumeInspectInfo[]> {
    // The filters as the query alone: dockerode would otherwise put the signal in it too.
    const res = await this.docker.listVolumes({
      _query: { filters: { label: labelFilter(labels) } },
      abortSignal: signal,
    } as Docker.VolumeListOptions);
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

  /**
   * Runs a command in a running container; env and stdin are passed out of band, never in
   * argv. Bounded twice: inside the container the command runs under `timeout` (when the image
   * has it), so a stuck process is killed rather than left behind; here, the call gives up
   * a moment later, or at once when `signal` aborts. Stdin is read by its exact length
   * (`head -c`): the command never waits for an end of input, which the engine does not
   * always pass on (a stdin close that reaches containerd before the process has started is
   * lost, and the command would read forever).
   */
  async exec(container: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? this.execTimeoutMs;
    opts.signal?.throwIfAborted();
    const stdinBytes = opts.input?.bytes ?? (opts.stdin === undefined ? undefined : Buffer.byteLength(opts.stdin));
    const bounded = boundedCommand(cmd, timeoutMs, stdinBytes);
    // Every request of the exec (create, start, the output, inspect) counts against one
    // deadline: an engine that stops answering halfway fails the call, it does not hang it.
    let stream: NodeJS.ReadWriteStream | undefined;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const givenUp = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${cmd[0]} in ${container} did not finish within ${timeoutMs + EXEC_GRACE_MS} ms`)),
        timeoutMs + EXEC_GRACE_MS,
      );
      onAbort = () =>
        reject(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error(`${cmd[0]} in ${container} was stopped`));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
    const run = async (): Promise<ExecResult> => {
      const exec = await this.docker.getContainer(container).exec({
        Cmd: bounded.cmd,
        Env: [...(opts.env ?? []), ...bounded.env],
        ...(opts.user ? { User: opts.user } : {}),
        AttachStdout: true,
        AttachStderr: true,
        AttachStdin: stdinBytes !== undefined,
      });
      const started = await exec.start({ hijack: true, stdin: stdinBytes !== undefined });
      stream = started;
      const out = new PassThrough();
      const err = new PassThrough();
      const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
      // A failing destination (a full disk) fails the call once the command has ended; never the process.
      const written = opts.stdout ? pipeline(out, opts.stdout) : undefined;
      written?.catch(() => undefined);
      if (!opts.stdout) out.on('data', (c: Buffer) => chunks.out.push(c));
      out.on('error', () => undefined);
      err.on('data', (c: Buffer) => chunks.err.push(c));
      this.docker.modem.demuxStream(started, out, err);
      const ended = new Promise<void>((resolve, reject) => {
        started.on('end', resolve);
        started.on('close', resolve);
        started.on('error', reject);
      });
      if (opts.input) {
        opts.input.stream.on('error', (e) => started.destroy(e));
        opts.input.stream.pipe(started);
      } else if (opts.stdin !== undefined) started.end(opts.stdin);
      await ended;
      if (written) {
        out.end();
        await written;
      }
      const info = await exec.inspect();
      return {
        exitCode: info.ExitCode ?? -1,
        stdout: Buffer.concat(chunks.out).toString('utf8'),
        stderr: Buffer.concat(chunks.err).toString('utf8'),
      };
    };
    const running = run();
    running.catch(() => undefined); // once given up on, its own end is of no interest
    try {
      return await Promise.race([running, givenUp]);
    } catch (e) {
      (stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
      throw e;
    } finally {
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** A folder of a container (its volume mounted there included) as a tar stream, entries named `<folder>/...`. */
  async getArchive(container: string, path: string): Promise<Readable> {
    return (await this.docker.getContainer(container).getArchive({ path })) as unknown as Readable;
  }

  /** Extracts a tar stream into a container's folder (running or not), keeping the entries' owners. */
  async putArchive(container: string, path: string, tar: Readable): Promise<void> {
    await this.docker.getContainer(container).putArchive(tar, { path });
  }

  /** Waits for a container to exit; returns its exit code. */
  async waitContainer(id: string): Promise<number> {
    return ((await this.docker.getContainer(id).wait()) as { StatusCode: number }).StatusCode;
  }

  /**
   * A Swarm service's log through the manager, from whichever node its tasks ran on, as one
   * text stream (services have no TTY here: their output is multiplexed).
   */
  async serviceLogs(service: string, opts: { tail: number; follow: boolean }): Promise<Readable> {
    const s = this.docker.getService(service);
    const common = { stdout: true, stderr: true, tail: opts.tail, timestamps: true } as const;
    if (opts.follow) {
      const raw = (await s.logs({ ...common, follow: true })) as unknown as Readable;
      return followedLog(raw, false, (r, stdout, stderr) => this.docker.modem.demuxStream(r, stdout, stderr));
    }
    const out = new PassThrough();
    out.end(demuxBuffer((await s.logs({ ...common, follow: false })) as unknown as Buffer));
    return out;
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
