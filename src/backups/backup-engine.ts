import { Inject, Injectable } from '@nestjs/common';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { LABEL, MANAGED_BY } from '../docker/plan.types';
import { runSql } from '../sites/site-database';
import type { ContentPlaces } from '../sites/site-engine';
import { both, Laps } from './laps';
import { ResticService, type SnapshotSummary } from './restic.service';

/** Where a site is: what a backup reads and a restore writes. */
export interface BackupTarget extends ContentPlaces {
  siteId: string;
  tenantId: string;
  tenantSlug: string;
  /** The tenant's database server's root password, and the site's database. */
  rootPassword: string;
  dbName: string;
  /** The site's WordPress container (or service) by name, its files volume, and the image a helper runs. */
  wpName: string;
  volume: string;
  /** What the volume is labelled with, should a restore have to make it (a stopped Swarm site on a new node). */
  volumeLabels: Record<string, string>;
  image: string;
}

export interface TakenBackup extends SnapshotSummary {
  durationMs: number;
  laps: Laps;
  wordpressVersion: string | null;
  image: string | null;
  tables: number;
}

export const BACKUP_PARTS = ['database', 'files'] as const;
export type BackupPart = (typeof BACKUP_PARTS)[number];

/**
 * New random keys and salts in the site's wp-config.php (the docker images' `getenv_docker`
 * defaults, or plain `define`s), written in place so the file keeps its owner and mode.
 */
const FRESH_KEYS = [
  'f="$0/wp-config.php"; [ -f "$f" ] || exit 0',
  'for key in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do',
  '  rand=$(head -c 48 /dev/urandom | sha256sum | cut -d" " -f1)',
  `  sed -E -e "s/('WORDPRESS_$key', *')[^']*(')/\\1$rand\\2/" -e "s/(define\\( *'$key', *')[^']*(')/\\1$rand\\2/" "$f" > "$f.berth" && cat "$f.berth" > "$f" || exit 1`,
  'done',
  'rm -f "$f.berth"',
].join('\n');

/** In a snapshot: the dump, and the site's files under `files/`. */
export const DUMP_PATH = '/database.sql';
export const FILES_PATH = '/files';

/** Where the restore helper mounts the site's volume: a snapshot's `files/` tar extracts onto it. */
const HELPER_MOUNT = '/files';

// The dump is one transaction (InnoDB: a consistent view without locking writers), streamed
// row by row (--quick); the password and database name travel in the exec's environment.
const DUMP = [
  'sh',
  '-c',
  'c=$(command -v mariadb-dump || command -v mysqldump) && exec "$c" -uroot -h127.0.0.1 --protocol=tcp --single-transaction --quick --routines --triggers --events --hex-blob --default-character-set=utf8mb4 --max-allowed-packet=256M "$BERTH_DB"',
];
const IMPORT = [
  'sh',
  '-c',
  'c=$(command -v mariadb || command -v mysql) && exec "$c" -uroot -h127.0.0.1 --protocol=tcp --default-character-set=utf8mb4 --max-allowed-packet=256M "$BERTH_DB"',
];
const IDENT = /^[a-z0-9_]{1,64}$/;

/**
 * What backups and restores do on the Docker Engine and in the repository: a backup stages the
 * site's dump and files in a folder of its own and lets restic take that folder as one
 * snapshot; a restore streams them back from restic into the database server and the volume.
 * Nothing is held whole in memory: dumps and files go through the disk or straight through.
 */
@Injectable()
export class BackupEngine {
  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly restic: ResticService,
  ) {}

  /** Dumps the database, copies the files, and takes them as one snapshot tagged with the tenant and site. */
  async take(t: BackupTarget, signal: AbortSignal): Promise<TakenBackup> {
    const started = Date.now();
    if (!IDENT.test(t.dbName)) throw new Error(`refusing an unexpected database name: ${t.dbName}`);
    // One folder per site, the same every time: restic finds the site's previous snapshot by
    // it and reads only the files that changed since.
    const stage = join(this.config.BERTH_BACKUP_STAGING_DIR, t.siteId);
    await rm(stage, { recursive: true, force: true });
    await mkdir(join(stage, 'files'), { recursive: true, mode: 0o700 });
    const laps = new Laps();
    try {
      // The files from WordPress's container (running or stopped), else (a site on a Swarm,
      // stopped: its service has no task) from a helper with its volume.
      const info = t.wp ? await t.wp.docker.inspectContainer(t.wp.container) : undefined;
      if (t.wp && !info) throw new Error(`the site's container ${t.wp.container} does not exist`);
      const mount = info?.Mounts.find((m) => m.Name === t.volume);
      if (info && !mount) throw new Error(`the site's volume ${t.volume} is not mounted in ${t.wpName}`);
      const files = async (dir: string, s: AbortSignal) => {
        if (t.wp && mount) return this.extract(await t.wp.docker.getArchive(t.wp.container, mount.Destination), dir, s);
        await this.helper(t, t.image, 'true', s, {
          after: async (helper) => this.extract(await t.volumes.getArchive(helper, HELPER_MOUNT), dir, s),
        });
      };
      // The dump and the files at once (two containers, two streams to disk): each is
      // consistent on its own, and the nearer in time the better.
      const [tables] = await both(signal, [
        async (s) => {
          const t0 = Date.now();
          const n = await this.tableCount(t, s);
          const dump = await t.db.docker.exec(t.db.container, DUMP, {
            env: [`MYSQL_PWD=${t.rootPassword}`, `BERTH_DB=${t.dbName}`],
            stdout: createWriteStream(join(stage, 'database.sql'), { mode: 0o600 }),
            timeoutMs: this.config.BERTH_BACKUP_TIMEOUT_MS,
            signal: s,
          });
          if (dump.exitCode !== 0) throw new Error(`database dump failed (exit ${dump.exitCode}): ${dump.stderr.trim().slice(0, 500)}`);
          laps.add('dump', Date.now() - t0);
          return n;
        },
        async (s) => {
          const t0 = Date.now();
          await files(join(stage, 'files'), s);
          laps.add('files', Date.now() - t0);
          return 0;
        },
      ]);
      laps.lap('');
      const summary = await this.restic.backup(stage, [`tenant:${t.tenantId}`, `site:${t.siteId}`], signal);
      laps.lap('restic');
      return {
        ...summary,
        laps,
        durationMs: Date.now() - started,
        wordpressVersion: await wordpressVersion(join(stage, 'files')),
        image: info?.Config.Image ?? t.image,
        tables,
      };
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  /** Replaces the site's database with the snapshot's dump (the site's user keeps its rights: they are by name). */
  async restoreDatabase(t: BackupTarget, snapshotId: string, signal: AbortSignal): Promise<void> {
    if (!IDENT.test(t.dbName)) throw new Error(`refusing an unexpected database name: ${t.dbName}`);
    const bytes = await this.restic.fileSize(snapshotId, DUMP_PATH, signal);
    if (bytes === undefined) throw new Error(`snapshot ${snapshotId} holds no database dump`);
    // The dump is flowing before anything is dropped: a snapshot that cannot be read changes nothing.
    const dump = await this.restic.openDump(snapshotId, DUMP_PATH, signal);
    try {
      await runSql(
        t.db.docker,
        t.db.container,
        t.rootPassword,
        `DROP DATABASE IF EXISTS \`${t.dbName}\`; CREATE DATABASE \`${t.dbName}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
        signal,
      );
      // restic failing midway (a damaged pack) ends the import at once, not at its timeout.
      const failed = new AbortController();
      dump.done.catch((e: unknown) => failed.abort(e instanceof Error ? e : new Error(String(e))));
      const res = await t.db.docker.exec(t.db.container, IMPORT, {
        env: [`MYSQL_PWD=${t.rootPassword}`, `BERTH_DB=${t.dbName}`],
        input: { stream: dump.stream, bytes },
        timeoutMs: this.config.BERTH_BACKUP_TIMEOUT_MS,
        signal: AbortSignal.any([signal, failed.signal]),
      });
      // The server's own error first: restic, left writing to a closed pipe, would only say it was stopped.
      if (res.exitCode !== 0) throw new Error(`database import failed (exit ${res.exitCode}): ${res.stderr.trim().slice(0, 500)}`);
      await dump.done;
    } finally {
      dump.stop();
    }
  }

  /**
   * Makes the site's volume hold exactly the snapshot's files: a short-lived helper container
   * (the site's own image, no network, no capabilities but reading and removing any file)
   * empties it, then the snapshot's tar is extracted onto it with its owners and modes.
   * The site's container must be stopped.
   */
  async restoreFiles(
    t: BackupTarget,
    image: string,
    snapshotId: string,
    signal: AbortSignal,
    opts: { freshKeys?: boolean } = {},
  ): Promise<void> {
    // The snapshot's files are flowing before the volume is emptied: one that cannot be read changes nothing.
    const tar = await this.restic.openDump(snapshotId, FILES_PATH, signal);
    try {
      await this.helper(t, image, 'find "$0" -mindepth 1 -maxdepth 1 -exec rm -rf {} +', signal, {
        writes: true,
        after: async (helper) => {
          await Promise.all([t.volumes.putArchive(helper, '/', tar.stream), tar.done]);
        },
      });
    } finally {
      tar.stop();
    }
    // Another site's files (a clone's, a push's) hold that site's keys and salts: with them,
    // a login cookie of one would be valid on the other.
    if (opts.freshKeys) await this.helper(t, image, FRESH_KEYS, signal, { writes: true });
  }

  /**
   * Runs `script` (`$0` is the volume's folder) in a short-lived container of the site's
   * image with the site's volume, then `after` on the stopped container (an extraction).
   * The volume must be there to be read; one that `writes` fills is made (labelled as the
   * site's) when missing: on a Swarm, a stopped site's volume on a new node is made by no task.
   * The image is brought onto that engine (a node that never ran the site has not got it).
   */
  private async helper(
    t: BackupTarget,
    image: string,
    script: string,
    signal: AbortSignal,
    opts: { writes?: boolean; after?: (container: string) => Promise<void> } = {},
  ): Promise<void> {
    const docker = t.volumes;
    if (!(await docker.inspectVolume(t.volume))) {
      if (!opts.writes) throw new Error(`the site's volume ${t.volume} is not on the engine of its tenant's node`);
      await docker.createVolume(t.volume, t.volumeLabels);
    }
    const missing = await docker.ensureImage(image);
    if (missing) throw new Error(`image ${image} is not on the engine holding the site's volume: ${missing}`);
    signal.throwIfAborted();
    const name = `${t.wpName}_restore`;
    // One an interrupted attempt left behind.
    await docker.removeContainer(name);
    const helper = await docker.createContainer({
      name,
      Image: image,
      Entrypoint: ['sh', '-c', script, HELPER_MOUNT],
      User: '0:0',
      Labels: {
        [LABEL.managedBy]: MANAGED_BY,
        [LABEL.instance]: this.config.BERTH_INSTANCE,
        [LABEL.tenant]: t.tenantSlug,
        // The site's: one an interrupted restore left behind goes with the site's next apply.
        [LABEL.siteId]: t.siteId,
        [LABEL.role]: 'restore-helper',
      },
      // Not read-only: the engine extracts the snapshot's `files/...` entries from its root
      // (into the volume mounted at /files), which it refuses on a read-only root filesystem.
      // The helper has no network and runs nothing but `find` before the extraction.
      HostConfig: {
        NetworkMode: 'none',
        CapDrop: ['ALL'],
        CapAdd: ['DAC_OVERRIDE', 'FOWNER'],
        SecurityOpt: ['no-new-privileges'],
        Mounts: [{ Type: 'volume', Source: t.volume, Target: HELPER_MOUNT }],
      },
    });
    try {
      await docker.startContainer(helper);
      const code = await Promise.race([docker.waitContainer(helper), aborted(signal)]);
      if (code !== 0) throw new Error(`${script.split(' ')[0]} on the site's volume failed (exit ${code})`);
      signal.throwIfAborted();
      await opts.after?.(helper);
    } finally {
      await docker.removeContainer(helper);
    }
  }

  /** Tables in the site's database: what a restore must give back. */
  async tableCount(t: BackupTarget, signal: AbortSignal): Promise<number> {
    const out = await runSql(
      t.db.docker,
      t.db.container,
      t.rootPassword,
      `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${t.dbName}'`,
      signal,
    );
    const n = Number(out.trim().split('\n').pop());
    if (!Number.isInteger(n)) throw new Error(`unexpected table count: ${out.slice(0, 200)}`);
    return n;
  }

  /**
   * Extracts a tar stream of `<folder>/...` into `dir`, as root keeping owners, modes and times.
   * Either side failing (the engine's stream, tar exiting early) fails the call and closes the other.
   */
  private async extract(tar: Readable, dir: string, signal: AbortSignal): Promise<void> {
    const child = spawn('tar', ['-x', '--numeric-owner', '--same-owner', '--strip-components=1', '-C', dir], {
      stdio: ['pipe', 'ignore', 'pipe'],
      signal,
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8').slice(0, 1000)));
    const exited = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`copying the site's files failed: ${stderr.trim()}`))));
    });
    await Promise.all([pipeline(tar, child.stdin), exited]);
  }
}

/** Rejects when the signal aborts (for waits that take none). */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** The WordPress version a site's files hold (wp-includes/version.php), if they are WordPress. */
async function wordpressVersion(files: string): Promise<string | null> {
  const php = await readFile(join(files, 'wp-includes', 'version.php'), 'utf8').catch(() => '');
  return /\$wp_version\s*=\s*'([^']+)'/.exec(php)?.[1] ?? null;
}
