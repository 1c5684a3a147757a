import type { Site, Tenant } from '../generated/prisma/client';
import { DesiredState, SiteStatus } from '../generated/prisma/enums';
import type { EngineView } from '../docker/plan-drift';
import { LABEL, type Plan } from '../docker/plan.types';
import type { RolloutState } from './rollout';
import { reconcileSites, type SitePassPorts, type SiteWithTenant } from './site-pass';

const tenant = { id: 't1', slug: 'acme' } as Tenant;
const siteRow = (id: string, extra: Partial<Site> = {}): SiteWithTenant =>
  ({
    id,
    name: id,
    tenantId: 't1',
    tenant,
    status: SiteStatus.RUNNING,
    desiredState: DesiredState.RUNNING,
    hostPort: 20000,
    generation: 1,
    lastError: null,
    ...extra,
  }) as SiteWithTenant;

/** What the engine has of a site: its container as planned, none, or one with other settings. */
type Seen = 'healthy' | 'missing' | 'outdated';
const healthy: Seen = 'healthy';
const missing: Seen = 'missing';
const outdated: Seen = 'outdated';

const wp = (site: Pick<Site, 'id'>) => `wp_${site.id}`;
/** Each site's plan: one WordPress container whose settings hash to h1. */
const planOf = (site: Pick<Site, 'id'>): Plan => ({
  networks: [],
  volumes: [],
  containers: [
    { name: wp(site), running: true, create: { name: wp(site), Labels: { [LABEL.role]: 'wordpress', [LABEL.specHash]: 'h1' } } },
  ],
});
const engine = (sites: SiteWithTenant[], seen: (s: SiteWithTenant) => Seen): EngineView => ({
  networks: new Map(),
  volumes: new Set(),
  containers: new Map(
    sites
      .filter((s) => seen(s) !== 'missing')
      .map((s) => [wp(s), { state: 'running', labels: { [LABEL.specHash]: seen(s) === 'outdated' ? 'old' : 'h1' }, networks: {} }]),
  ),
});

/** The pass over fakes: secrets of the sites named in `unreadable` cannot be opened. */
function reconcilerWith(opts: { unreadable?: string[]; enqueueFails?: string[] } = {}) {
  const created: { siteId: string; reason: string; rollout: boolean }[] = [];
  const events: { type: string; siteId: string }[] = [];
  const statusUpdates: { id: string; lastError: string }[] = [];
  const warnings: string[] = [];
  const ports: SitePassPorts = {
    expectedPlan: (s) => {
      if (opts.unreadable?.includes(s.id)) throw new Error('Unsupported state or unable to authenticate data');
      return planOf(s);
    },
    publicUrl: () => null,
    repair: async (s, reason, rollout) => {
      if (opts.enqueueFails?.includes(s.id)) throw new Error('queue is gone');
      created.push({ siteId: s.id, reason, rollout });
      return true;
    },
    recordProblem: async (s, message) => {
      statusUpdates.push({ id: s.id, lastError: message });
      events.push({ type: 'site.reconcile.failed', siteId: s.id });
    },
    warn: (m) => warnings.push(m),
  };
  const reconciler = {
    reconcileSites: (sites: SiteWithTenant[], seen: (s: SiteWithTenant) => Seen, rollout: RolloutState, retry?: Set<string>) =>
      reconcileSites(sites, engine(sites, seen), rollout, ports, retry),
  };
  return { reconciler, created, events, statusUpdates, warnings };
}

const open = { batch: 2, inFlight: 0, halted: false };

describe('a reconcile pass, site by site', () => {
  it("repairs the other sites when one site's plan cannot be made, and records the problem on that site", async () => {
    const { reconciler, created, events, statusUpdates } = reconcilerWith({ unreadable: ['bad'] });
    const sites = [siteRow('first'), siteRow('bad'), siteRow('last')];
    const repaired = await reconciler.reconcileSites(sites, () => missing, open);
    expect(repaired).toEqual(['first', 'last']);
    expect(created.map((j) => j.siteId)).toEqual(['first', 'last']);
    expect(statusUpdates).toEqual([{ id: 'bad', lastError: 'reconciler: Unsupported state or unable to authenticate data' }]);
    expect(events.filter((e) => e.type === 'site.reconcile.failed')).toEqual([expect.objectContaining({ siteId: 'bad' })]);
  });

  it('records the same problem once, not on every pass', async () => {
    const { reconciler, events, statusUpdates } = reconcilerWith({ unreadable: ['bad'] });
    const sites = [siteRow('bad')];
    await reconciler.reconcileSites(sites, () => healthy, open);
    await reconciler.reconcileSites(sites, () => healthy, open);
    // A later pass reads the row again, with the error it recorded.
    await reconciler.reconcileSites(
      [siteRow('bad', { lastError: 'reconciler: Unsupported state or unable to authenticate data' })],
      () => healthy,
      open,
    );
    expect(statusUpdates).toHaveLength(1);
    expect(events.filter((e) => e.type === 'site.reconcile.failed')).toHaveLength(1);
  });

  it('logs a lasting problem once, then one line a pass for every site that still has it', async () => {
    const { reconciler, warnings } = reconcilerWith({ unreadable: ['a', 'b', 'c'] });
    const recorded = 'reconciler: Unsupported state or unable to authenticate data';
    await reconciler.reconcileSites([siteRow('a'), siteRow('b')], () => healthy, open);
    expect(warnings).toEqual([`site a: ${recorded}`, `site b: ${recorded}`]);
    warnings.length = 0;
    // The next pass reads a and b with their problem recorded; c's problem is new, so it is logged.
    await reconciler.reconcileSites(
      [siteRow('a', { lastError: recorded }), siteRow('b', { lastError: recorded }), siteRow('c')],
      () => healthy,
      open,
    );
    expect(warnings).toEqual([
      `site c: ${recorded}`,
      `2 site(s) still cannot be reconciled, as recorded on them (lastError): ${recorded} (a, b)`,
    ]);
  });

  it("goes on when one site's repair cannot be enqueued", async () => {
    const { reconciler, events } = reconcilerWith({ enqueueFails: ['first'] });
    const repaired = await reconciler.reconcileSites([siteRow('first'), siteRow('second')], () => missing, open);
    expect(repaired).toEqual(['second']);
    expect(events.filter((e) => e.type === 'site.reconcile.failed')).toEqual([expect.objectContaining({ siteId: 'first' })]);
  });

  it('finds no problem where there is none (positive control)', async () => {
    const { reconciler, created, events } = reconcilerWith();
    expect(await reconciler.reconcileSites([siteRow('a'), siteRow('b')], () => healthy, open)).toEqual([]);
    expect(created).toEqual([]);
    expect(events).toEqual([]);
  });
});

describe('a reconcile pass, rolling out a configuration change', () => {
  const fleet = ['s1', 's2', 's3', 's4'].map((id) => siteRow(id));

  it('replaces at most the batch size of containers, marking their jobs as the rollout', async () => {
    const { reconciler, created } = reconcilerWith();
    expect(await reconciler.reconcileSites(fleet, () => outdated, open)).toEqual(['s1', 's2']);
    expect(created.map((j) => j.rollout)).toEqual([true, true]);
  });

  it('repairs an outage at once, whatever the rollout', async () => {
    const { reconciler, created } = reconcilerWith();
    const observe = (s: Site): Seen => (s.id === 's4' ? missing : outdated);
    expect(await reconciler.reconcileSites(fleet, observe, { batch: 2, inFlight: 2, halted: true })).toEqual(['s4']);
    expect(created[0].rollout).toBe(false);
  });

  it('tries again, within the batch, sites whose rollout failed under an earlier configuration', async () => {
    const { reconciler, created } = reconcilerWith();
    const failed = siteRow('f', { status: SiteStatus.FAILED });
    expect(
      await reconciler.reconcileSites([failed, siteRow('ok')], () => healthy, { batch: 1, inFlight: 0, halted: false }, new Set(['f'])),
    ).toEqual(['f']);
    expect(created[0].rollout).toBe(true);
  });
});
