import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupScheduler } from '../src/backups/backup-scheduler.service';
import type { BackupsService } from '../src/backups/backups.service';
import { ResticService } from '../src/backups/restic.service';
import type { ResticPeers } from '../src/backups/restic-peers';
import type { PrismaService } from '../src/database/prisma.service';
import type { EventsService } from '../src/events/events.service';
import type { JobsService } from '../src/jobs/jobs.service';
import type { MetricsService } from '../src/metrics/metrics.service';
import type { RedisService } from '../src/redis/redis.service';
import type { BerthConfig } from '../src/config/config';
import { SecretBox } from '../src/common/crypto';

// Nest's decorators only; restic itself is the real one.
jest.mock('@nestjs/common', () => jest.requireActual('./nest-common-stub'));
// The scheduler's other collaborators are given as fakes below; their modules are not loaded.
jest.mock('../src/jobs/jobs.service', () => ({}));
jest.mock('../src/backups/backups.service', () => ({}));
jest.mock('../src/events/events.service', () => ({}));
jest.mock('../src/metrics/metrics.service', () => ({}));

/**
 * The backup repository with real restic: made the first time it is needed, opened again by
 * the installation that made it, and refused with a clear reason (not "config file already
 * exists" from an init that cannot help) to an installation whose password does not open it.
 */
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-restic-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function restic(repository: string, password: string, peers?: ResticPeers): ResticService {
  const config = { BERTH_BACKUP_REPOSITORY: repository, BERTH_BACKUP_PASSWORD: password, BERTH_RESTIC: 'restic', BERTH_INSTANCE: 'test' };
  return new ResticService(config as unknown as BerthConfig, new SecretBox(Buffer.alloc(32, 1)), peers);
}

it('makes the repository once, reopens it with its password, and says why another password cannot', async () => {
  const repository = join(dir, 'repo');
  await restic(repository, 'first-password-0123456789').ensureRepository();
  const made = await readFile(join(repository, 'config'));
  // The positive control: the same password opens it again and lists its (no) snapshots.
  await expect(restic(repository, 'first-password-0123456789').snapshotIds(['tenant:x'])).resolves.toEqual([]);

  const other = restic(repository, 'another-password-0123456789');
  await expect(other.ensureRepository()).rejects.toThrow(
    new RegExp(`backup repository ${repository} exists but does not open with this installation's password`),
  );
  await expect(other.snapshotIds(['tenant:x'])).rejects.toThrow(/wrong password or no key found/);
  // Nothing was made or changed in it.
  expect(await readFile(join(repository, 'config'))).toEqual(made);
});

it('a lock a killed restic left (its process gone) neither hides the repository nor stops the next backup', async () => {
  const repository = join(dir, 'stale');
  const password = 'first-password-0123456789';
  const before = restic(repository, password);
  const files = join(dir, 'files');
  await mkdir(files, { recursive: true });
  await writeFile(join(files, 'random.bin'), randomBytes(256 * 1024));
  const first = await before.backup(files, ['tenant:x']);
  const env = { ...process.env, RESTIC_REPOSITORY: repository, RESTIC_PASSWORD: password };
  /** restic with `args`: its exit code, its output and what it said. */
  const run = async (...args: string[]) => {
    const child = spawn('restic', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let said = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (said += c.toString()));
    // 'close', not 'exit': its output read to the end.
    const [code] = (await once(child, 'close')) as [number];
    return { code, out, said };
  };
  // A restic that holds an exclusive lock for minutes (reading every pack at 1 KiB/s), killed
  // once its lock is whole (read without taking a lock, which would stand in its way).
  const check = spawn('restic', ['--limit-download', '1', 'check', '--read-data'], { env, stdio: 'ignore' });
  const deadline = Date.now() + 30_000;
  for (let held = false; !held;) {
    for (const id of await readdir(join(repository, 'locks'))) {
      const lock = await run('--no-lock', 'cat', 'lock', id);
      if (lock.code === 0 && JSON.parse(lock.out).pid === check.pid && JSON.parse(lock.out).exclusive === true) held = true;
    }
    if (Date.now() > deadline) throw new Error('restic check held no exclusive lock within 30 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  check.kill('SIGKILL');
  await once(check, 'exit');
  expect(await readdir(join(repository, 'locks'))).toHaveLength(1);
  // The control: restic itself still refuses to lock the repository while that lock is there.
  const refused = await run('cat', 'config');
  expect(refused.code).not.toBe(0);
  expect(refused.said).toMatch(/already locked exclusively/);

  // Berth after a restart (a new ResticService): the repository is there, and a backup clears
  // the stale lock and goes through, but only once no other Berth process runs restic (the
  // lock could be theirs: same hostname, another PID namespace, where restic takes it for stale).
  let othersRunning = true;
  const peers = { othersRunning: async () => othersRunning, started: () => undefined, ended: () => undefined } as unknown as ResticPeers;
  const after = restic(repository, password, peers);
  await expect(after.ensureRepository()).resolves.toBeUndefined();
  await writeFile(join(files, 'index.php'), '<?php echo 1;');
  const backup = after.backup(files, ['tenant:x']);
  // Three retries at least (0.25, 0.5 and 1 s apart): the lock is left alone while others run.
  await new Promise((r) => setTimeout(r, 3000));
  expect(await readdir(join(repository, 'locks'))).toHaveLength(1);
  othersRunning = false;
  const { snapshotId } = await backup;
  expect(snapshotId).toMatch(/^[0-9a-f]{64}$/);
  expect((await after.snapshotIds(['tenant:x'])).sort()).toEqual([first.snapshotId, snapshotId].sort());
  expect(await readdir(join(repository, 'locks'))).toEqual([]);
});

it('counts the daily prune, and when it fails tells the operator (metric, event) and tries again in an hour, not at the next run', async () => {
  const repository = join(dir, 'prune');
  await restic(repository, 'first-password-0123456789').ensureRepository();
  const scheduler = (password: string) => {
    const inc = jest.fn();
    const record = jest.fn(async () => undefined);
    const set = jest.fn(async () => 'OK');
    // Only what pruneDaily touches; restic and its repository are the real ones.
    const s = new BackupScheduler(
      {} as BerthConfig,
      { job: { count: async () => 0 } } as unknown as PrismaService,
      {} as JobsService,
      {} as BackupsService,
      restic(repository, password),
      { client: { set } } as unknown as RedisService,
      { record } as unknown as EventsService,
      { backupPrunes: { inc } } as unknown as MetricsService,
    );
    return { s, inc, record, set };
  };
  // The positive control: the installation's own password prunes, counted as ok.
  const ok = scheduler('first-password-0123456789');
  await ok.s.pruneDaily();
  expect(ok.inc).toHaveBeenCalledWith({ result: 'ok' });
  expect(ok.record).not.toHaveBeenCalled();

  const failing = scheduler('another-password-0123456789');
  await failing.s.pruneDaily();
  expect(failing.inc).toHaveBeenCalledWith({ result: 'failed' });
  expect(failing.inc).not.toHaveBeenCalledWith({ result: 'ok' });
  expect(failing.record).toHaveBeenCalledWith(
    expect.objectContaining({ type: 'backup.prune.failed', message: expect.stringMatching(/tried again in 60 minutes: .*password/) }),
  );
  expect(failing.set).toHaveBeenLastCalledWith('berth:backup:pruned', expect.stringMatching(/^failed /), 'EX', 3600);
});
