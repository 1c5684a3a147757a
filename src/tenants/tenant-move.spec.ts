import type { Job } from '../generated/prisma/client';
import type { TenantMoveParams } from '../nodes/nodes.service';
import { TenantMoveService } from './tenant-move.service';

jest.mock('@nestjs/common', () => ({
  Injectable: () => () => undefined,
  Inject: () => () => undefined,
  Logger: class {
    log() {}
    warn() {}
  },
}));
// The service's collaborators are faked below: their modules (Nest, Swagger, Prisma) are not loaded.
jest.mock('../jobs/jobs.service', () => ({ JobsService: class {} }));
jest.mock('../events/events.service', () => ({ EventsService: class {} }));
jest.mock('../nodes/nodes.service', () => ({ NodesService: class {} }));
jest.mock('../backups/backup-runner.service', () => ({ BackupRunner: class {} }));
jest.mock('../sites/site-runner.service', () => ({ SiteRunner: class {} }));
jest.mock('../sites/site-planner', () => ({ SitePlanner: class {} }));
jest.mock('../sites/swarm-site-engine', () => ({ SwarmSiteEngine: class {} }));
jest.mock('../redis/redis.service', () => ({ RedisService: class {} }));
jest.mock('../database/prisma.service', () => ({ PrismaService: class {} }));

/**
 * A tenant's move with the Swarm, restic and the database faked: the order of its steps (every
 * checkpoint before anything is made on the new node, the old node cleared last), and its way
 * back (a failure before the sites run on the new node puts the tenant back where its data is).
 */

const site = (name: string, over: object = {}) => ({
  id: `site-${name}`,
  tenantId: 't1',
  name,
  status: 'RUNNING',
  desiredState: 'RUNNING',
  installedAt: new Date(),
  generation: 3,
  ...over,
});

function world(opts: { failMoveIn?: string; failClear?: boolean; noRoom?: boolean } = {}) {
  const log: string[] = [];
  const tenant = { id: 't1', slug: 'acme', nodeId: 'n1' };
  let params: TenantMoveParams = { fromNodeId: 'n1', actorKeyId: 'k1' };
  let job = { id: 'j1', tenantId: 't1', kind: 'MOVE_TENANT', status: 'QUEUED', params } as unknown as Job;
  const sites = [
    site('blog'),
    site('shop', { status: 'STOPPED', desiredState: 'STOPPED' }),
    site('new', { status: 'PENDING', installedAt: null }),
  ];
  const prisma = {
    job: {
      findUnique: async () => job,
      findUniqueOrThrow: async () => ({ ...job, params }),
      update: async ({ data }: { data: Partial<Job> & { params?: TenantMoveParams } }) => {
        if (data.params) params = data.params;
        if (data.status) log.push(`job ${data.status}${data.error ? `: ${data.error}` : ''}`);
        job = { ...job, ...data, params } as unknown as Job;
        return job;
      },
      count: async () => 0,
    },
    site: {
      findMany: async () => sites,
      findUniqueOrThrow: async ({ where }: { where: { id: string } }) => sites.find((s) => s.id === where.id),
    },
    tenant: {
      findUniqueOrThrow: async () => ({ ...tenant }),
      update: async ({ data }: { data: { nodeId: string } }) => {
        tenant.nodeId = data.nodeId;
        log.push(`tenant on ${data.nodeId}`);
      },
    },
    backup: { findUnique: async ({ where }: { where: { id: string } }) => ({ id: where.id, snapshotId: `snap-${where.id}` }) },
  };
  const locks = () => ({ release: async () => undefined, verify: async () => undefined, signal: new AbortController().signal });
  const redis = { tryLock: async () => locks() };
  const jobs = { publish: async () => undefined };
  const events = { record: async (e: { type: string }) => void log.push(`event ${e.type}`) };
  const nodes = {
    placeMove: async () => {
      if (opts.noRoom) throw new Error('No other node has room');
      tenant.nodeId = 'n2';
      log.push('tenant on n2');
      return 'n2';
    },
    hostname: async (id: string) => id,
  };
  const engine = {
    hasDatabaseServer: async () => true,
    stopWordPress: async (service: string) => void log.push(`stop ${service}`),
    applyTenant: async () => (log.push(`database server on ${tenant.nodeId}`), []),
    waitForDatabase: async () => undefined,
    clearNode: async (_slug: string, node: string) => {
      log.push(`clear ${node}`);
      if (opts.failClear) throw new Error('volume in use');
      return [];
    },
  };
  const runner = {
    converge: async (_j: unknown, t: { nodeId: string }, s: { name: string }) => (log.push(`converge ${s.name} on ${t.nodeId}`), 'RUNNING'),
  };
  const backups = {
    checkpointForMove: async (_j: unknown, where: { nodeId: string }, s: { id: string; name: string }) => {
      log.push(`checkpoint ${s.name} on ${where.nodeId}`);
      return { id: `cp-${s.name}`, snapshotId: `snap-${s.name}` };
    },
    moveIn: async (_j: unknown, t: { nodeId: string }, s: { name: string }) => {
      log.push(`move ${s.name} in on ${t.nodeId}`);
      if (opts.failMoveIn === s.name) throw new Error('restore failed');
      return 'RUNNING';
    },
  };
  const planner = { tenantFacts: () => ({ dbRootPassword: 'root' }), tenantPlan: () => ({ networks: [], volumes: [], containers: [] }) };
  const service = new TenantMoveService(
    { BERTH_STEP_TIMEOUT_MS: 10_000, BERTH_LOCK_TTL_MS: 10_000, BERTH_INSTANCE: 'default' } as never,
    prisma as never,
    redis as never,
    jobs as never,
    events as never,
    nodes as never,
    engine as never,
    runner as never,
    backups as never,
    planner as never,
  );
  const bull = { data: { jobId: 'j1' } };
  return { log, run: () => service.process(bull as never), params: () => params };
}

describe('TenantMoveService', () => {
  it('takes every checkpoint on the old node before anything is made on the new one, and clears the old node last', async () => {
    const w = world();
    await w.run();
    expect(w.log).toEqual([
      'job RUNNING',
      'tenant on n2',
      // The site not made yet is not carried: its own job makes it on the new node.
      'checkpoint blog on n1',
      'checkpoint shop on n1',
      'stop wp_acme_new',
      'database server on n2',
      'move blog in on n2',
      'move shop in on n2',
      'clear n1',
      'job SUCCEEDED',
      'event tenant.moved',
    ]);
    expect(w.params()).toMatchObject({ toNodeId: 'n2', applied: true, checkpoints: { 'site-blog': 'cp-blog', 'site-shop': 'cp-shop' } });
  });

  it('a failure before the sites run on the new node moves the tenant back where its data is, and clears the new node', async () => {
    const w = world({ failMoveIn: 'shop' });
    await expect(w.run()).rejects.toThrow(/restore failed; the tenant was moved back/);
    const back = w.log.slice(w.log.indexOf('move shop in on n2') + 1);
    expect(back).toEqual([
      'tenant on n1',
      'database server on n1',
      'converge blog on n1',
      'converge shop on n1',
      'clear n2',
      expect.stringMatching(/^job FAILED: restore failed; the tenant was moved back/),
      'event tenant.move.failed',
    ]);
    // The old node was never cleared.
    expect(w.log).not.toContain('clear n1');
  });

  it('with no room elsewhere, nothing is changed', async () => {
    const w = world({ noRoom: true });
    await expect(w.run()).rejects.toThrow(/No other node has room; nothing was changed/);
    expect(w.log.filter((l) => !l.startsWith('job') && !l.startsWith('event'))).toEqual([]);
  });

  it('once the sites run on the new node, a failure to clear the old one does not move them back', async () => {
    const w = world({ failClear: true });
    await expect(w.run()).rejects.toThrow(
      /the tenant runs on node n2, but what it left on its old node was not all removed: volume in use/,
    );
    expect(w.log).not.toContain('tenant on n1');
    expect(w.log.filter((l) => l.startsWith('converge'))).toEqual([]);
  });
});
