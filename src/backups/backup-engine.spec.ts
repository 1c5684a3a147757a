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
  volumeLabels: { 'berth.role': 'volume', 'berth.tenant': 'acme' },
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

/**
 * The helper that reads or fills a site's volume with no container of the site's own (a
 * stopped Swarm site), with Docker and restic faked: a restore onto a node that has neither
 * the volume nor the image makes the volume with the site's labels and brings the image; a
 * backup never makes an empty volume to read from.
 */
describe('BackupEngine helper', () => {
  function world(has: { volume: boolean; image: boolean }) {
    const calls: string[] = [];
    const docker = {
      inspectVolume: jest.fn(async () => (has.volume ? { Name: 'vol' } : undefined)),
      createVolume: jest.fn(
        async (name: string, labels: Record<string, string>) => void calls.push(`volume ${name} ${labels['berth.role']}`),
      ),
      ensureImage: jest.fn(async (ref: string) => (calls.push(`image ${ref}`), has.image ? undefined : 'pull failed: no registry')),
      removeContainer: jest.fn(async () => undefined),
      createContainer: jest.fn(async () => (calls.push('helper'), 'h1')),
      startContainer: jest.fn(async () => undefined),
      waitContainer: jest.fn(async () => 0),
      putArchive: jest.fn(async () => void calls.push('extract')),
      getArchive: jest.fn(async () => new PassThrough()),
    };
    const restic = { openDump: jest.fn(async () => ({ stream: new PassThrough(), done: Promise.resolve(), stop: () => undefined })) };
    const e = new BackupEngine(
      { BERTH_BACKUP_STAGING_DIR: '/tmp/berth-spec-staging', BERTH_INSTANCE: 'default' } as never,
      restic as never,
    );
    return { e, calls, t: target(docker), docker };
  }

  it("a restore onto a node without the volume makes it, labelled as the site's, and brings the image first", async () => {
    const w = world({ volume: false, image: true });
    await w.e.restoreFiles(w.t, 'berth/wordpress', 'snap', new AbortController().signal);
    expect(w.calls).toEqual(['volume vol volume', 'image berth/wordpress', 'helper', 'extract']);
    expect(w.docker.createVolume).toHaveBeenCalledWith('vol', { 'berth.role': 'volume', 'berth.tenant': 'acme' });
  });

  it('a restore with the volume there makes none (the control)', async () => {
    const w = world({ volume: true, image: true });
    await w.e.restoreFiles(w.t, 'berth/wordpress', 'snap', new AbortController().signal);
    expect(w.calls).toEqual(['image berth/wordpress', 'helper', 'extract']);
  });

  it('an image the node cannot get fails the restore before the volume is touched', async () => {
    const w = world({ volume: true, image: false });
    await expect(w.e.restoreFiles(w.t, 'berth/wordpress', 'snap', new AbortController().signal)).rejects.toThrow(
      /image berth\/wordpress is not on the engine holding the site's volume: pull failed/,
    );
    expect(w.calls).not.toContain('helper');
  });

  it('a backup of a stopped site whose volume is not there fails, and makes no empty volume to read', async () => {
    const w = world({ volume: false, image: true });
    const t = { ...w.t, dbName: 'wp_0123456789abcdef', wp: undefined };
    (t.db.docker as unknown as Record<string, unknown>).exec = jest.fn(async () => ({ exitCode: 0, stdout: '0\n', stderr: '' }));
    await expect(w.e.take(t, new AbortController().signal)).rejects.toThrow(
      /the site's volume vol is not on the engine of its tenant's node/,
    );
    expect(w.docker.createVolume).not.toHaveBeenCalled();
  });
});
