import { Inject, Injectable, Logger } from '@nestjs/common';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PassThrough, type Readable } from 'node:stream';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { SecretBox } from '../common/crypto';
import { ResticPeers } from './restic-peers';

/** What restic reported about a snapshot it just made. */
export interface SnapshotSummary {
  snapshotId: string;
  /** Bytes read from the staged dump and files. */
  totalBytes: number;
  /** Bytes the snapshot added to the repository (after deduplication and compression). */
  addedBytes: number;
}

/** restic writing a file or folder of a snapshot to its stdout. */
export interface Dump {
  stream: Readable;
  /** Settles when restic has exited; rejects when it failed. */
  done: Promise<void>;
  /** Ends restic if it still runs (its reader gave up). */
  stop(): void;
}

/** A node of a snapshot, as `restic ls --json` prints it. */
interface LsNode {
  struct_type?: string;
  path?: string;
  size?: number;
}

/** How long an operation that needs the repository to itself waits for others to let go of it. */
const LOCK_WAIT_MS = 60_000;

/** Longest stderr kept for an error message. */
const STDERR_LIMIT = 2000;

/**
 * How restic is stopped: SIGINT, on which it removes its lock from the repository on the way
 * out. restic 0.14 does not catch SIGTERM: one stopped with it leaves a stale lock behind,
 * which holds off every forget and prune until `unlock` (seen: a cut download did so).
 */
const STOP_SIGNAL = 'SIGINT';

/** A backup tool that failed: what it said. */
export class ResticError extends Error {}

/**
 * The only place that runs restic (Debian's package): one repository per installation,
 * `BERTH_BACKUP_REPOSITORY`, whose password is `BERTH_BACKUP_PASSWORD` or derived from
 * Berth's encryption key. Snapshots carry the tags `tenant:<id>` and `site:<id>` and the host
 * `berth-<instance>`, so retention can group by them (restic's default grouping, by host and
 * path, would mix sites).
 */
@Injectable()
export class ResticService {
  private readonly logger = new Logger('Restic');
  private readonly password: string;
  private ready?: Promise<void>;

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    box: SecretBox,
    /** Given by Nest (BackupsModule); without it (a tool run alone), stale locks are cleared whenever one is met. */
    private readonly peers?: ResticPeers,
  ) {
    this.password = config.BERTH_BACKUP_PASSWORD ?? box.derive('restic-repository');
  }

  get host(): string {
    return `berth-${this.config.BERTH_INSTANCE}`;
  }

  /** Creates the repository the first time it is needed (a local one's directory too). */
  ensureRepository(signal?: AbortSignal): Promise<void> {
    this.ready ??= this.initialise(signal).catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  private async initialise(signal?: AbortSignal): Promise<void> {
    if (await this.exists(signal)) return;
    const repo = this.config.BERTH_BACKUP_REPOSITORY;
    if (repo.startsWith('/')) await mkdir(repo, { recursive: true, mode: 0o700 });
    try {
      await this.run(['init'], { signal });
      this.logger.log(`initialised the backup repository ${repo}`);
    } catch (e) {
      // Another worker initialised it meanwhile.
      if (!(await this.exists(signal))) throw e;
    }
  }

  /**
   * Whether the repository is there; throws when it is there but this password does not open
   * it (another installation's, or a changed password): initialising it again cannot help.
   * Read without a lock: a lock a killed restic left would otherwise make it look absent, and
   * the init that followed failed with "config file already exists" at every backup. Backups,
   * forgets and prunes clear such a lock themselves ({@link waiting}); listings and restores
   * wait for one of those to have run.
   */
  private async exists(signal?: AbortSignal): Promise<boolean> {
    return this.run(['--no-lock', 'cat', 'config'], { signal }).then(
      () => true,
      (e: Error) => {
        if (/wrong password/i.test(e.message))
          throw new ResticError(
            `the backup repository ${this.config.BERTH_BACKUP_REPOSITORY} exists but does not open with this installation's password ` +
              '(BERTH_BACKUP_PASSWORD, or the one derived from BERTH_ENCRYPTION_KEY): restic says wrong password or no key found',
          );
        return false;
      },
    );
  }

  /** Backs up the directory `dir` (its contents become the snapshot's root) and returns restic's summary. */
  async backup(dir: string, tags: string[], signal?: AbortSignal): Promise<SnapshotSummary> {
    await this.ensureRepository(signal);
    const args = ['backup', '--json', '--host', this.host, '--ignore-inode', '--ignore-ctime', ...tags.flatMap((t) => ['--tag', t]), '.'];
    const { stdout } = await this.waiting(args, { cwd: dir, signal });
    const summary = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { message_type?: string; snapshot_id?: string; total_bytes_processed?: number; data_added?: number })
      .find((m) => m.message_type === 'summary');
    if (!summary?.snapshot_id) throw new ResticError(`restic backup printed no summary: ${stdout.slice(-STDERR_LIMIT)}`);
    const snapshotId = await this.fullId(summary.snapshot_id, signal);
    return { snapshotId, totalBytes: summary.total_bytes_processed ?? 0, addedBytes: summary.data_added ?? 0 };
  }

  /**
   * restic 0.14's summary names a snapshot by a short id, which two of millions may share:
   * the whole one is kept. A local repository's `snapshots/` folder is named by them (restic's
   * documented layout), which spares a second restic run and its key derivation; any other
   * repository is asked.
   */
  private async fullId(short: string, signal?: AbortSignal): Promise<string> {
    const repo = this.config.BERTH_BACKUP_REPOSITORY;
    const ids = repo.startsWith('/')
      ? (await readdir(join(repo, 'snapshots')).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}$/.test(n) && n.startsWith(short))
      : [];
    if (ids.length === 1) return ids[0];
    const [snapshot] = JSON.parse((await this.run(['snapshots', '--json', short], { signal })).stdout) as { id: string }[];
    if (!snapshot?.id.startsWith(short)) throw new ResticError(`restic does not find the snapshot ${short} it made`);
    return snapshot.id;
  }

  /** The size of a file in a snapshot (`/database.sql`), or undefined when the snapshot has none. */
  async fileSize(snapshotId: string, path: string, signal?: AbortSignal): Promise<number | undefined> {
    const { stdout } = await this.waiting(['ls', '--json', snapshotId, path], { signal });
    for (const line of stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const node = JSON.parse(line) as LsNode;
      if (node.struct_type === 'node' && node.path === path) return node.size;
    }
    return undefined;
  }

  /**
   * A file of a snapshot, or a folder as a tar stream (entries named `<folder>/...`), as restic
   * writes it. `done` settles when restic has exited: a corrupt or missing snapshot rejects it.
   * `stop` ends restic if it is still running (its reader gave up), so it never waits on a full pipe.
   */
  dump(snapshotId: string, path: string, signal?: AbortSignal): Dump {
    const child = this.spawn(['dump', snapshotId, path], { signal });
    const done = this.exit(child, `dump ${snapshotId} ${path}`);
    done.catch(() => undefined); // its caller awaits it; once stopped, its end is of no interest
    return {
      stream: child.stdout,
      done,
      stop: () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill(STOP_SIGNAL);
        // One that does not listen is killed; its lock stays until `unlock` finds it stale.
        setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), 10_000).unref();
      },
    };
  }

  /** The ids of the snapshots carrying every one of `tags`. */
  async snapshotIds(tags: string[], signal?: AbortSignal): Promise<string[]> {
    await this.ensureRepository(signal);
    const { stdout } = await this.run(['snapshots', '--json', '--host', this.host, '--tag', tags.join(',')], { signal });
    return (JSON.parse(stdout || '[]') as { id: string }[] | null)?.map((s) => s.id) ?? [];
  }

  /**
   * A dump whose first bytes have come (a snapshot that cannot be read fails here, before its
   * caller has changed anything), waiting while a prune holds the repository.
   */
  async openDump(snapshotId: string, path: string, signal?: AbortSignal): Promise<Dump> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let wait = 250; ; wait = Math.min(wait * 2, 4000)) {
      const dump = this.dump(snapshotId, path, signal);
      try {
        // The first chunk goes ahead of the rest into a stream of its own, which holds them for its reader.
        const whole = new PassThrough();
        let flowing = false;
        await new Promise<void>((resolve, reject) => {
          const first = (chunk: Buffer) => {
            flowing = true;
            dump.stream.off('data', first);
            whole.write(chunk);
            dump.stream.pipe(whole);
            resolve();
          };
          dump.stream.on('data', first);
          dump.done.then(() => {
            // restic ended without a byte: an empty file.
            if (!flowing) {
              dump.stream.off('data', first);
              whole.end();
            }
            resolve();
          }, reject);
        });
        return { ...dump, stream: whole };
      } catch (e) {
        dump.stop();
        if (!(e instanceof ResticError) || !/already locked/.test(e.message) || Date.now() + wait > deadline) throw e;
        await delay(wait, undefined, { signal });
      }
    }
  }

  /**
   * Forgets snapshots (their data goes at the next prune). That needs the repository to itself:
   * while a backup, restore or download holds it, this waits (restic 0.14 does not), and a lock
   * that a killed restic left behind is cleared (`unlock` removes only stale ones).
   */
  async forget(snapshotIds: string[], signal?: AbortSignal): Promise<void> {
    if (snapshotIds.length) await this.waiting(['forget', ...snapshotIds], { signal });
  }

  /** Removes the data no snapshot uses any more (forgotten snapshots'): needs the repository to itself. */
  async prune(signal?: AbortSignal): Promise<void> {
    await this.ensureRepository(signal);
    await this.waiting(['prune'], { signal });
  }

  /** Checks the repository's structure (`restic check`); throws with what it found. */
  async check(signal?: AbortSignal): Promise<void> {
    await this.waiting(['check'], { signal });
  }

  /**
   * Runs restic, waiting while another holds the repository in a way that excludes it (a
   * prune excludes backups; a forget needs it to itself); restic 0.14 fails at once instead.
   */
  private async waiting(args: string[], opts: { cwd?: string; signal?: AbortSignal }): Promise<{ stdout: string }> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let wait = 250; ; wait = Math.min(wait * 2, 4000)) {
      try {
        return await this.run(args, opts);
      } catch (e) {
        if (!(e instanceof ResticError) || !/already locked/.test(e.message) || Date.now() + wait > deadline) throw e;
        // Only while no other Berth process runs restic: their live locks can look stale here.
        if (!(await this.peers?.othersRunning())) await this.run(['unlock'], { signal: opts.signal }).catch(() => undefined);
        await delay(wait, undefined, { signal: opts.signal });
      }
    }
  }

  /** Runs restic and collects its output (small: JSON summaries and listings). */
  private async run(args: string[], opts: { cwd?: string; signal?: AbortSignal }): Promise<{ stdout: string }> {
    const child = this.spawn(args, opts);
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    await this.exit(child, args[0] ?? 'restic');
    return { stdout: Buffer.concat(out).toString('utf8') };
  }

  /** Every restic child: counted while it runs ({@link ResticPeers}). */
  private spawn(args: string[], opts: { cwd?: string; signal?: AbortSignal }) {
    // Marked before it can take a lock, and until it has exited: 'close' (not 'error', which an
    // abort emits while restic still runs and holds its lock) comes after a failed spawn too.
    this.peers?.started();
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(this.config.BERTH_RESTIC, args, {
        cwd: opts.cwd,
        env: this.env(),
        stdio: ['ignore', 'pipe', 'pipe'],
        signal: opts.signal,
        killSignal: STOP_SIGNAL,
      });
    } catch (e) {
      this.peers?.ended();
      throw e;
    }
    child.once('close', () => this.peers?.ended());
    return child;
  }

  /** Resolves when the child exits 0; rejects with what it said on stderr otherwise. */
  private exit(child: ReturnType<typeof spawn>, what: string): Promise<void> {
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      if (stderr.length < STDERR_LIMIT) stderr += c.toString('utf8');
    });
    return new Promise((resolve, reject) => {
      child.once('error', (e) => reject(new ResticError(`restic ${what}: ${e.message}`)));
      child.once('close', (code, sig) =>
        code === 0
          ? resolve()
          : reject(new ResticError(`restic ${what} failed (${sig ?? `exit ${code}`}): ${stderr.trim().slice(0, STDERR_LIMIT)}`)),
      );
    });
  }

  /**
   * restic's environment: this process's (PATH, HOME for restic's cache, and a remote
   * repository's own credentials such as AWS_* or B2_*, which restic reads itself) with the
   * repository and its password.
   */
  private env(): NodeJS.ProcessEnv {
    return { ...process.env, RESTIC_REPOSITORY: this.config.BERTH_BACKUP_REPOSITORY, RESTIC_PASSWORD: this.password };
  }
}
