import type { EngineView, SeenContainer } from '../docker/plan-drift';
import type { Plan } from '../docker/plan.types';
import { DesiredState, SiteStatus } from '../generated/prisma/enums';
import { planSite, planTenant, type PlanSettings, type SiteFacts, type TenantFacts } from '../sites/site-plan';
import { driftOf } from './drift';

const settings: PlanSettings = {
  instance: 'default',
  wordpressImage: 'wordpress:6-apache',
  dbImage: 'mariadb:10.11',
  wordpressDataPath: '/var/www/html',
  publishAddress: '127.0.0.1',
  subnetPool: '10.64.0.0/12',
  subnetPrefix: 24,
  pidsLimit: 256,
  dbMemoryMb: 1024,
  dbCpus: 1,
};
const tenant: TenantFacts = { slug: 'acme', networkIndex: 3, dbRootPasswordSealed: 'v1.root.sealed', maxMemoryMb: 2048, maxCpus: 2 };
const site: SiteFacts = {
  id: '11111111-2222-3333-4444-555555555555',
  name: 'blog',
  env: {},
  restartPolicy: 'unless-stopped',
  memoryMb: null,
  cpus: null,
  dbName: 'wp_1111',
  dbUser: 'wp_1111',
  dbPasswordSealed: 'v1.site.sealed',
  hostPort: 20080,
  running: true,
};

/** The plan the reconciler compares with: the tenant's objects and the site's, from sealed secrets. */
function planOf(s: PlanSettings = settings, running = true): Plan {
  const shared = planTenant(tenant, s);
  const own = planSite(tenant, { ...site, running }, s);
  return {
    networks: [...shared.networks, ...own.networks],
    volumes: [...shared.volumes, ...own.volumes],
    containers: [...shared.containers, ...own.containers],
  };
}

/** An engine holding exactly what `plan` describes, as applying it would leave it. */
function engineFor(
  plan: Plan,
): EngineView & { networks: Map<string, string>; volumes: Set<string>; containers: Map<string, SeenContainer> } {
  const networks = new Map(plan.networks.map((n) => [n.name, `id-${n.name}`]));
  return {
    networks,
    volumes: new Set(plan.volumes.map((v) => v.name)),
    containers: new Map(
      plan.containers.map((c) => {
        const net = c.create.HostConfig?.NetworkMode as string;
        return [c.name, { state: c.running ? 'running' : 'exited', labels: c.create.Labels, networks: { [net]: networks.get(net) } }];
      }),
    ),
  };
}

const running = { status: SiteStatus.RUNNING, desiredState: DesiredState.RUNNING };
const plan = planOf();
const [db, wp] = plan.containers.map((c) => c.name);

describe('driftOf: the plan compared with the engine', () => {
  it('finds nothing when the engine holds what the plan describes (positive control for every case below)', () => {
    expect(driftOf(running, plan, engineFor(plan))).toBeUndefined();
    const stopped = planOf(settings, false);
    expect(driftOf({ status: SiteStatus.STOPPED, desiredState: DesiredState.STOPPED }, stopped, engineFor(stopped))).toBeUndefined();
  });

  it.each<[string, (seen: ReturnType<typeof engineFor>) => void, RegExp]>([
    ['a removed WordPress container', (s) => s.containers.delete(wp), /WordPress container wp_acme_blog is missing/],
    ['a removed database server', (s) => s.containers.delete(db), /tenant database server db_acme is missing/],
    ['a removed site volume', (s) => s.volumes.delete('berth_acme_blog_data'), /site volume berth_acme_blog_data is missing/],
    ['a removed network', (s) => s.networks.delete('berth_acme'), /tenant network berth_acme is missing/],
    ['a stopped container that should run', (s) => (s.containers.get(wp)!.state = 'exited'), /wp_acme_blog is exited, should be running/],
    ['a stopped database server', (s) => (s.containers.get(db)!.state = 'exited'), /database server db_acme is exited, should be running/],
    [
      'a container cut off from its network (network made again)',
      (s) => s.networks.set('berth_acme', 'a-new-id'),
      /wp_acme_blog: not attached to network berth_acme/,
    ],
  ])('finds %s, and repairs it at once (not as a rollout)', (_what, change, reason) => {
    const seen = engineFor(plan);
    change(seen);
    const drift = driftOf(running, plan, seen);
    expect(drift?.reason).toMatch(reason);
    expect(drift?.rollout).toBe(false);
  });

  it('sees a fleet-wide change of the WordPress or the database settings as a rollout', () => {
    const before = engineFor(plan);
    expect(driftOf(running, planOf({ ...settings, wordpressImage: 'wordpress:6.5-apache' }), before)).toEqual({
      reason: 'WordPress container wp_acme_blog: settings differ',
      rollout: true,
    });
    expect(driftOf(running, planOf({ ...settings, dbMemoryMb: 2048 }), before)).toEqual({
      reason: 'tenant database server db_acme: settings differ',
      rollout: true,
    });
  });

  it('repairs at once a site with an outage, even when its settings differ too', () => {
    const seen = engineFor(plan);
    seen.containers.delete(db);
    const drift = driftOf(running, planOf({ ...settings, pidsLimit: 128 }), seen);
    expect(drift).toEqual({ reason: expect.stringMatching(/db_acme is missing; .*wp_acme_blog: settings differ/), rollout: false });
  });

  it('does not compare the settings of a site whose plan is not known in full (no host port yet)', () => {
    const other = planOf({ ...settings, wordpressImage: 'wordpress:other' });
    expect(driftOf(running, other, engineFor(plan), false)).toBeUndefined();
    expect(driftOf(running, other, engineFor(plan), true)?.rollout).toBe(true);
  });

  it('finishes sites left in a transitional state without a job', () => {
    expect(driftOf({ status: SiteStatus.PROVISIONING, desiredState: DesiredState.RUNNING }, plan, engineFor(plan))?.reason).toMatch(
      /PROVISIONING/,
    );
    expect(driftOf({ status: SiteStatus.DELETING, desiredState: DesiredState.ABSENT }, plan, engineFor(plan))?.reason).toMatch(/deletion/);
  });

  it('installs WordPress on a running site from before Berth installed it, as a rollout; not on one it installed', () => {
    expect(driftOf({ ...running, installedAt: null }, plan, engineFor(plan))).toEqual({
      reason: 'WordPress was not installed by Berth (a site from before)',
      rollout: true,
    });
    expect(driftOf({ ...running, installedAt: new Date() }, plan, engineFor(plan))).toBeUndefined();
    // A site on its way (its own job installs it) and a stopped one are left to their jobs.
    expect(
      driftOf(
        { status: SiteStatus.STOPPED, desiredState: DesiredState.STOPPED, installedAt: null },
        planOf(settings, false),
        engineFor(planOf(settings, false)),
      ),
    ).toBeUndefined();
  });

  it('moves WordPress when its public URL changed (a primary domain came or went) since its last job', () => {
    const at = { ...running, installedAt: new Date(), wordpressUrl: 'https://blog-acme.sites.test/' };
    expect(driftOf(at, plan, engineFor(plan), true, 'https://blog.example/')).toEqual({
      reason: 'WordPress is at https://blog-acme.sites.test/, its public URL is https://blog.example/',
      rollout: false,
    });
    expect(driftOf(at, plan, engineFor(plan), true, 'https://blog-acme.sites.test/')).toBeUndefined();
    expect(driftOf(at, plan, engineFor(plan), true, null)).toBeUndefined();
  });

  it('leaves FAILED and DELETED sites alone', () => {
    const seen = engineFor(plan);
    seen.containers.delete(wp);
    expect(driftOf({ status: SiteStatus.FAILED, desiredState: DesiredState.RUNNING }, plan, seen)).toBeUndefined();
    expect(driftOf({ status: SiteStatus.DELETED, desiredState: DesiredState.ABSENT }, plan, seen)).toBeUndefined();
  });
});
