import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResticService } from '../src/backups/restic.service';
import type { BerthConfig } from '../src/config/config';
import { SecretBox } from '../src/common/crypto';

// Nest's decorators only; restic itself is the real one.
jest.mock('@nestjs/common', () => jest.requireActual('./nest-common-stub'));

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

function restic(repository: string, password: string): ResticService {
  const config = { BERTH_BACKUP_REPOSITORY: repository, BERTH_BACKUP_PASSWORD: password, BERTH_RESTIC: 'restic', BERTH_INSTANCE: 'test' };
  return new ResticService(config as unknown as BerthConfig, new SecretBox(Buffer.alloc(32, 1)));
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
