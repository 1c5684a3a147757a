import type { Backup, Job } from '../generated/prisma/client';
import { StepRecorder } from '../jobs/step-recorder';
import { RolledBackError } from '../sites/site-runner.service';
import { BackupRunner } from './backup-runner.service';
import { Laps } from './laps';

jest.mock('@nestjs/common', () => ({
  Injectable: () => () => undefined,
  Inject: () => () => undefined,
  Logger: class {
    log() {}
    warn() {}
  },
}));

/**
 * The restore's order and its way back, with the Docker and restic side faked: the checkpoint
 * comes before anything is changed, a failure puts the checkpoint back, and a retried attempt
 * reuses the checkpoint its first attempt took instead of taking one of a half-restored site.
 */

const site = {
  id: 's1',
  tenantId: 't1',
  name: 'shop',
  status: 'RUNNING',
  desiredState: 'RUNNING',
  generation: 4,
  dbName: 'wp_1',
  hostPort: 21000,
};
const tenant = { id: 't1', slug: 'acme' };

function world(opts: { failRestore?: 'database' | 'files'; failCheckpoint?: boolean; checkpointId?: string } = {}) {
  const log: string[] = [];
  const backups = new Map<string, Partial<Backup>>([
    [
      'b1',
      {
        id: 'b1',
        siteId: 's1',
        kind: 'MANUAL',
        status: 'SUCCEEDED',
        snapshotId: 'snap-b1',
        tables: 12,
        wordpressUrl: 'https://old.example',
      },
    ],
  ]);
  if (opts.checkpointId)
    backups.set(opts.checkpointId, { id: opts.checkpointId, kind: 'CHECKPOINT', status: 'SUCCEEDED', snapshotId: 'snap-cp0', tables: 12 });
  let created = 0;
  const prisma = {
    site: {
      findUniqueOrThrow: async () => ({ ...site }),
      update: async ({ data }: { data: object }) => void log.push(`site.update ${JSON.stringify(data)}`),
    },
    tenant: { findUniqueOrThrow: async () => tenant },
    backup: {
      findUniqueOrThrow: async ({ where }: { where: { id: string } }) => backups.get(where.id),
      findUnique: async ({ where }: { where: { id: string } }) => backups.get(where.id) ?? null,
      create: async ({ data }: { data: Partial<Backup> }) => {
        const row = { ...data, id: `cp${++created}`, status: 'PENDING' } as Partial<Backup>;
        backups.set(row.id!, row);
        return row;
      },
      update: async ({ where, data }: { where: { id: string }; data: Partial<Backup> }) => {
        const row = { ...backups.get(where.id), ...data };
        backups.set(where.id, row);
        return row;
      },
    },
    job: { update: async ({ data }: { data: { params: object } }) => void log.push(`job.params ${JSON.stringify(data.params)}`) },
  };
  const engine = {
    take: async () => {
      log.push('take');
      if (opts.failCheckpoint) throw new Error('disk full');
      return {
        snapshotId: `snap-${created}`,
        totalBytes: 10,
        addedBytes: 1,
        durationMs: 5,
        laps: new Laps(),
        wordpressVersion: '6.1',
        image: 'wp',
        tables: 12,
      };
    },
    restoreDatabase: async (_t: unknown, snap: string) => {
      log.push(`database ${snap}`);
      if (opts.failRestore === 'database' && snap === 'snap-b1') throw new Error('import failed');
    },
    restoreFiles: async (_t: unknown, _image: string, snap: string) => {
      log.push(`files ${snap}`);
      if (opts.failRestore === 'files' && snap === 'snap-b1') throw new Error('extract failed');
    },
    tableCount: async () => 12,
  };
  const sites = {
    contentPlaces: async () => ({ db: {}, wp: {}, volumes: {} }),
    stopWordPress: async () => (log.push('stop'), 'wp'),
    homePage: async () => ({ status: 200, location: null }),
  };
  const runner = { converge: async () => (log.push('converge'), 'RUNNING') };
  const status = {
    set: async (_s: unknown, data: { status?: string; wordpressUrl?: string }) =>
      void log.push(data.status ? `status ${data.status}` : `site.set wordpressUrl=${data.wordpressUrl}`),
  };
  const events = { record: async (e: { type: string }) => void log.push(`event ${e.type}`) };
  const planner = { tenantFacts: () => ({ dbRootPassword: 'root' }), sealedSiteFacts: () => ({}) };
  const config = { BERTH_INSTANCE: 'default', BERTH_WORDPRESS_IMAGE: 'wp' };
  const backupRunner = new BackupRunner(
    config as never,
    prisma as never,
    events as never,
    planner as never,
    engine as never,
    sites as never,
    runner as never,
    status as never,
    { forget: async () => undefined } as never,
  );
  const job = {
    id: 'j1',
    siteId: 's1',
    tenantId: 't1',
    kind: 'RESTORE',
    generation: 4,
    params: { backupId: 'b1', parts: ['database', 'files'], ...(opts.checkpointId ? { checkpointId: opts.checkpointId } : {}) },
  } as unknown as Job;
  const steps = new StepRecorder(6, 10_000, async () => undefined);
  return { log, backups, run: () => backupRunner.run(job, steps), steps };
}

describe('BackupRunner restore', () => {
  it('takes the checkpoint before it changes anything, then puts the backup back and brings the site up', async () => {
    const w = world();
    await expect(w.run()).resolves.toBe('RUNNING');
    const first = w.log.indexOf('take');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(w.log.indexOf('stop')).toBeGreaterThan(first);
    expect(w.log.filter((l) => /^(take|stop|database|files|converge)/.test(l))).toEqual([
      'take',
      'stop',
      'database snap-b1',
      'files snap-b1',
      'converge',
    ]);
    // The restored database is moved from the backup's URL to the site's by the converge.
    expect(w.log).toContain('site.set wordpressUrl=https://old.example');
    expect(w.log).toContain('event site.restored');
    expect(w.steps.steps.map((s) => s.name)).toEqual([
      'checkpoint of the current state',
      'restore database and files from backup',
      'check the restored site',
    ]);
  });

  it('puts the checkpoint back when the restore fails midway, and says it rolled back', async () => {
    const w = world({ failRestore: 'files' });
    const error = await w.run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RolledBackError);
    expect((error as Error).message).toMatch(/restore failed and was rolled back to checkpoint cp1: extract failed/);
    expect(w.log.filter((l) => /^(database|files|converge)/.test(l))).toEqual([
      'database snap-b1',
      'files snap-b1',
      'database snap-1',
      'files snap-1',
      'converge',
    ]);
    expect(w.log).not.toContain('event site.restored');
  });

  it('a retried attempt reuses the checkpoint its first attempt took', async () => {
    const w = world({ checkpointId: 'cp0', failRestore: 'database' });
    await expect(w.run()).rejects.toThrow(/rolled back to checkpoint cp0/);
    expect(w.log).not.toContain('take');
    expect(w.log).toContain('database snap-cp0');
  });

  it('changes nothing when the checkpoint cannot be taken', async () => {
    const w = world({ failCheckpoint: true });
    const error = await w.run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RolledBackError);
    expect((error as Error).message).toMatch(/checkpoint before the restore failed: disk full; nothing was changed/);
    expect(w.log.some((l) => /^(stop|database|files|converge)/.test(l))).toBe(false);
    expect(w.backups.get('cp1')).toMatchObject({ status: 'FAILED', error: 'disk full' });
  });
});

/** The retention policy after a backup: what a restore or a tenant's move under way puts back is spared. */
describe('BackupRunner retention', () => {
  const day = (n: number) => new Date(Date.UTC(2026, 11, 6 - n, 3));
  // Scheduled backups of four days; the policy keeps the newest day's only.
  const rows = [0, 1, 2, 3].map((n) => ({ id: `s${n}`, createdAt: day(n), snapshotId: `snap-s${n}`, jobId: `bj${n}` }));

  function retention(jobs: { moves?: { id: string; params: object }[]; restores?: { params: object }[] }) {
    const forgotten: string[] = [];
    const deleted: string[] = [];
    const prisma = {
      backup: {
        findMany: async () => rows,
        updateMany: async ({ where }: { where: { id: { in: string[] } } }) => void deleted.push(...where.id.in),
      },
      job: {
        findMany: async ({ where }: { where: { kind: string } }) =>
          where.kind === 'MOVE_TENANT' ? (jobs.moves ?? []) : (jobs.restores ?? []),
      },
    };
    const runner = new BackupRunner(
      {} as never,
      prisma as never,
      { record: async () => undefined } as never,
      {} as never,
      {} as never,
      {} as never,
      {} as never,
      {} as never,
      { forget: async (ids: string[]) => void forgotten.push(...ids) } as never,
    );
    const site = { id: 'site1', tenantId: 't1', name: 'shop', backupKeepDaily: 1, backupKeepWeekly: 0 };
    const run = () =>
      (runner as unknown as { applyRetention: (s: object, a: AbortSignal) => Promise<number> }).applyRetention(
        site,
        new AbortController().signal,
      );
    return { run, forgotten, deleted };
  }

  it('forgets what the policy no longer keeps (the control: nothing under way)', async () => {
    const r = retention({});
    await expect(r.run()).resolves.toBe(3);
    expect(r.forgotten.sort()).toEqual(['snap-s1', 'snap-s2', 'snap-s3']);
    expect(r.deleted.sort()).toEqual(['s1', 's2', 's3']);
  });

  it("spares the backup a move from backups puts back, the checkpoint a move took, and a restore's backup and checkpoint", async () => {
    const r = retention({
      moves: [
        // A move from backups (its node down): it puts back s1, a backup it did not take.
        { id: 'move1', params: { fromBackups: true, checkpoints: { site1: 's1' } } },
        // An ordinary move: s2 is the checkpoint its own job took.
        { id: 'bj2', params: {} },
      ],
      restores: [{ params: { backupId: 's3', checkpointId: 's0' } }],
    });
    await expect(r.run()).resolves.toBe(0);
    expect(r.forgotten).toEqual([]);

    const only = retention({ moves: [{ id: 'move1', params: { fromBackups: true, checkpoints: { site1: 's1' } } }] });
    await expect(only.run()).resolves.toBe(2);
    expect(only.forgotten.sort()).toEqual(['snap-s2', 'snap-s3']);

    // A restore's checkpoint (one the policy would forget) on its own.
    const checkpoint = retention({ restores: [{ params: { backupId: 's0', checkpointId: 's2' } }] });
    await expect(checkpoint.run()).resolves.toBe(2);
    expect(checkpoint.forgotten.sort()).toEqual(['snap-s1', 'snap-s3']);
  });
});
