import { PassThrough } from 'node:stream';
import { BackupEngine, type BackupTarget } from './backup-engine';

jest.mock('@nestjs/common', () => ({
  Injectable: () => () => undefined,
  Inject: () => () => undefined,
}));

const target = (docker: unknown): BackupTarget => ({
  siteId: 's',
  tenantId: 't',
  tenantSlug: 'acme',
  rootPassword: 'root',
  dbName: 'wp_0123456789abcdef',
  wpName: 'wp_acme_blog',
  volume: 'vol',
  image: 'berth/wordpress',
  db: { docker: docker as never, container: 'db_acme' },
  volumes: docker as never,
});

/**
 * The database import with Docker and restic faked: an import whose dump fails midway (restic
 * reads a damaged pack) ends at once with restic's error, not at the step's hour-long timeout.
 */
describe('BackupEngine.restoreDatabase', () => {
  function engine(dumpFails: boolean) {
    const stream = new PassThrough();
    let fail: (e: Error) => void = () => undefined;
    const done = new Promise<void>((resolve, reject) => {
      fail = reject;
      if (!dumpFails) setTimeout(resolve, 20);
    });
    const execs: string[] = [];
    const docker = {
      exec: jest.fn(async (_c: string, cmd: string[], opts: { signal?: AbortSignal; input?: unknown }) => {
        execs.push(opts.input ? 'import' : 'sql');
        if (!opts.input) return { exitCode: 0, stdout: '', stderr: '' };
        // The import reads until its input is whole: it waits unless stopped.
        return new Promise((resolve, reject) => {
          opts.signal?.addEventListener('abort', () => reject(opts.signal?.reason as Error), { once: true });
          if (!dumpFails) setTimeout(() => resolve({ exitCode: 0, stdout: '', stderr: '' }), 10);
        });
      }),
    };
    const restic = {
      fileSize: jest.fn(async () => 1000),
      openDump: jest.fn(async () => ({ stream, done, stop: () => undefined })),
    };
    const e = new BackupEngine({ BERTH_BACKUP_TIMEOUT_MS: 3_600_000 } as never, restic as never);
    return { e, fail, execs, t: target(docker) };
  }

  it('ends the import at once, with restic error, when the dump fails midway', async () => {
    const { e, fail, execs, t } = engine(true);
    const t0 = Date.now();
    const restoring = e.restoreDatabase(t, 'snap', new AbortController().signal);
    await new Promise((r) => setTimeout(r, 30));
    expect(execs).toEqual(['sql', 'import']);
    fail(new Error('restic dump: ciphertext verification failed'));
    await expect(restoring).rejects.toThrow('ciphertext verification failed');
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('imports when the dump succeeds (the control: the same fakes finish)', async () => {
    const { e, execs, t } = engine(false);
    await expect(e.restoreDatabase(t, 'snap', new AbortController().signal)).resolves.toBeUndefined();
    expect(execs).toEqual(['sql', 'import']);
  });
});
