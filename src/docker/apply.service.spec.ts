import { BerthError, ErrorCode } from '../common/errors';

// @nestjs/common is ESM, which Jest cannot require here; the decorators do nothing in a unit test.
jest.mock('@nestjs/common', () => ({
  Injectable: () => () => undefined,
  Inject: () => () => undefined,
  Logger: class {
    debug() {}
  },
}));
import { ApplyService } from './apply.service';
import type { DockerService } from './docker.service';
import { LABEL, MANAGED_BY, type Plan } from './plan.types';

interface FakeContainer {
  Id: string;
  name: string;
  labels: Record<string, string>;
  running: boolean;
  network?: string;
}

/** Just enough of a Docker Engine for ApplyService: objects by name, and every change it was asked for. */
function fakeEngine() {
  const containers = new Map<string, FakeContainer>();
  const networks = new Map<string, { Id: string; Name: string; Labels: Record<string, string> }>();
  const volumes = new Map<string, { Name: string; Labels: Record<string, string> }>();
  const calls: string[] = [];
  let ids = 0;
  const matches = (labels: Record<string, string>, filter: Record<string, string>) =>
    Object.entries(filter).every(([k, v]) => labels[k] === v);
  const byId = (id: string) => [...containers.values()].find((c) => c.Id === id);
  const info = (c: FakeContainer) => ({
    Id: c.Id,
    Name: `/${c.name}`,
    Config: { Labels: c.labels },
    State: { Running: c.running, Status: c.running ? 'running' : 'created' },
    NetworkSettings: { Networks: c.network ? { [c.network]: { NetworkID: networks.get(c.network)?.Id } } : {} },
  });
  const docker = {
    /** Hook run before createContainer, to let a test race another creator in. */
    beforeCreate: undefined as (() => void) | undefined,
    /** Every image is present: the image check has tests of its own. */
    async ensureImage(): Promise<string | undefined> {
      return undefined;
    },
    async inspectContainer(name: string) {
      const c = containers.get(name);
      return c ? info(c) : undefined;
    },
    async createContainer(options: { name: string; Labels: Record<string, string>; HostConfig?: { NetworkMode?: string } }) {
      docker.beforeCreate?.();
      calls.push(`create container ${options.name}`);
      if (containers.has(options.name)) throw Object.assign(new Error('Conflict'), { statusCode: 409 });
      const Id = `c${++ids}`;
      containers.set(options.name, {
        Id,
        name: options.name,
        labels: options.Labels,
        running: false,
        network: options.HostConfig?.NetworkMode,
      });
      return Id;
    },
    async startContainer(id: string) {
      calls.push(`start ${id}`);
      byId(id)!.running = true;
    },
    async stopContainer(id: string) {
      calls.push(`stop ${id}`);
      byId(id)!.running = false;
    },
    async removeContainer(id: string) {
      calls.push(`remove container ${id}`);
      const c = byId(id);
      if (c) containers.delete(c.name);
    },
    async listContainers(filter: Record<string, string>) {
      return [...containers.values()]
        .filter((c) => matches(c.labels, filter))
        .map((c) => ({ Id: c.Id, Names: [`/${c.name}`], Labels: c.labels }));
    },
    async findNetworks(name: string) {
      const n = networks.get(name);
      return n ? [n] : [];
    },
    async listNetworks(filter: Record<string, string>) {
      return [...networks.values()].filter((n) => matches(n.Labels, filter));
    },
    async createNetwork(options: { Name: string; Labels: Record<string, string> }) {
      calls.push(`create network ${options.Name}`);
      networks.set(options.Name, { Id: `n${++ids}`, Name: options.Name, Labels: options.Labels });
    },
    async removeNetwork(id: string) {
      calls.push(`remove network ${id}`);
      for (const [k, n] of networks) if (n.Id === id) networks.delete(k);
    },
    async inspectVolume(name: string) {
      return volumes.get(name);
    },
    async listVolumes(filter: Record<string, string>) {
      return [...volumes.values()].filter((v) => matches(v.Labels, filter));
    },
    async createVolume(name: string, labels: Record<string, string>) {
      calls.push(`create volume ${name}`);
      volumes.set(name, { Name: name, Labels: labels });
    },
    async removeVolume(name: string) {
      calls.push(`remove volume ${name}`);
      volumes.delete(name);
    },
  };
  return {
    docker,
    containers,
    networks,
    volumes,
    calls,
    applier: (instance: string) => new ApplyService(docker as unknown as DockerService, { BERTH_INSTANCE: instance }),
  };
}

const labelsOf = (instance: string | undefined, extra: Record<string, string> = {}) => ({
  [LABEL.managedBy]: MANAGED_BY,
  ...(instance === undefined ? {} : { [LABEL.instance]: instance }),
  [LABEL.tenant]: 'acme',
  ...extra,
});

/** A tenant-like plan of instance blue: network, volume and a database server that should run. */
function planOf(instance: string): Plan {
  const labels = labelsOf(instance);
  return {
    networks: [{ name: 'net_acme', subnet: '10.99.0.0/24', gateway: '10.99.0.1', labels }],
    volumes: [{ name: 'vol_acme', labels }],
    containers: [
      {
        name: 'db_acme',
        running: true,
        create: {
          name: 'db_acme',
          Image: 'mariadb',
          Labels: { ...labels, [LABEL.specHash]: 'h1' },
          HostConfig: { NetworkMode: 'net_acme' },
        },
      },
    ],
  };
}

async function clashOf(p: Promise<unknown>): Promise<BerthError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(BerthError);
  expect((e as BerthError).code).toBe(ErrorCode.DOCKER_OBJECT_CLASH);
  return e as BerthError;
}

describe('ApplyService ownership', () => {
  it('creates what is missing and changes nothing the second time (positive control)', async () => {
    const f = fakeEngine();
    const first = await f.applier('blue').apply(planOf('blue'));
    expect(first.changes).toEqual([
      'network net_acme created',
      'volume vol_acme created',
      'container db_acme created',
      'container db_acme started',
    ]);
    const before = f.calls.length;
    expect((await f.applier('blue').apply(planOf('blue'))).changes).toEqual([]);
    expect(f.calls.length).toBe(before);
  });

  it.each([
    ['another instance', 'green', /belongs to Berth instance "green", not to this instance "blue"/],
    ['no instance label', undefined, /without an instance label/],
  ])('refuses a container of %s under its name: never replaced, started or removed', async (_what, owner, message) => {
    const f = fakeEngine();
    await f.applier('blue').apply({ ...planOf('blue'), containers: [] });
    // Stopped, with another spec hash: every reason there is to replace or start it.
    f.containers.set('db_acme', {
      Id: 'foreign',
      name: 'db_acme',
      labels: labelsOf(owner, { [LABEL.specHash]: 'other' }),
      running: false,
      network: 'net_acme',
    });
    f.calls.length = 0;
    const e = await clashOf(f.applier('blue').apply(planOf('blue')));
    expect(e.message).toContain('container db_acme');
    expect(e.message).toMatch(message);
    expect(f.calls).toEqual([]);
    expect(f.containers.get('db_acme')).toMatchObject({ Id: 'foreign', running: false });
  });

  it('refuses a running container of another instance that the plan wants stopped', async () => {
    const f = fakeEngine();
    await f.applier('blue').apply({ ...planOf('blue'), containers: [] });
    f.containers.set('db_acme', {
      Id: 'foreign',
      name: 'db_acme',
      labels: labelsOf('green', { [LABEL.specHash]: 'h1' }),
      running: true,
      network: 'net_acme',
    });
    f.calls.length = 0;
    const plan = planOf('blue');
    plan.containers[0].running = false;
    await clashOf(f.applier('blue').apply(plan));
    expect(f.calls).toEqual([]);
    expect(f.containers.get('db_acme')?.running).toBe(true);
  });

  it('refuses a network or volume of another instance under its name', async () => {
    const f = fakeEngine();
    f.networks.set('net_acme', { Id: 'n-foreign', Name: 'net_acme', Labels: labelsOf('green') });
    expect((await clashOf(f.applier('blue').apply(planOf('blue')))).message).toMatch(/network net_acme belongs to Berth instance "green"/);
    const g = fakeEngine();
    g.volumes.set('vol_acme', { Name: 'vol_acme', Labels: labelsOf('green') });
    expect((await clashOf(g.applier('blue').apply(planOf('blue')))).message).toMatch(/volume vol_acme belongs to Berth instance "green"/);
    expect(g.calls).toEqual(['create network net_acme']);
  });

  it("refuses a site's volume under its name that another site's id labels, and uses one with its own id", async () => {
    const sitePlan = (siteId: string): Plan => ({
      networks: [],
      volumes: [{ name: 'vol_acme_blog', labels: labelsOf('blue', { [LABEL.siteId]: siteId }) }],
      containers: [],
    });
    const f = fakeEngine();
    f.volumes.set('vol_acme_blog', { Name: 'vol_acme_blog', Labels: labelsOf('blue', { [LABEL.siteId]: 'site-deleted' }) });
    expect((await clashOf(f.applier('blue').apply(sitePlan('site-new')))).message).toMatch(
      /volume vol_acme_blog belongs to another site \(site-deleted\)/,
    );
    expect((await f.applier('blue').apply(sitePlan('site-deleted'))).changes).toEqual([]);
    expect(f.calls).toEqual([]);
  });

  it("refuses an object that is not Berth's at all", async () => {
    const f = fakeEngine();
    f.volumes.set('vol_acme', { Name: 'vol_acme', Labels: {} });
    expect((await clashOf(f.applier('blue').apply(planOf('blue')))).message).toMatch(/volume vol_acme exists but is not managed by Berth/);
  });

  it("does not adopt another instance's container created between its inspect and its create", async () => {
    const f = fakeEngine();
    f.docker.beforeCreate = () => {
      f.containers.set('db_acme', {
        Id: 'racer',
        name: 'db_acme',
        labels: labelsOf('green', { [LABEL.specHash]: 'h1' }),
        running: false,
        network: 'net_acme',
      });
    };
    await clashOf(f.applier('blue').apply(planOf('blue')));
    expect(f.calls).not.toContain('start racer');
    expect(f.containers.get('db_acme')).toMatchObject({ Id: 'racer', running: false });
  });

  it("prunes only its own instance's objects, even when the scope leaves the instance out", async () => {
    const f = fakeEngine();
    const scope = { [LABEL.tenant]: 'acme', [LABEL.siteId]: 'site-1' };
    for (const owner of ['blue', 'green']) {
      const labels = labelsOf(owner, { [LABEL.siteId]: 'site-1' });
      f.containers.set(`wp_${owner}`, { Id: `wp-${owner}`, name: `wp_${owner}`, labels, running: true });
      f.volumes.set(`data_${owner}`, { Name: `data_${owner}`, Labels: labels });
    }
    const report = await f.applier('blue').apply({ networks: [], volumes: [], containers: [] }, scope);
    expect(report.changes).toEqual(['container wp_blue removed', 'volume data_blue removed']);
    expect([...f.containers.keys()]).toEqual(['wp_green']);
    expect([...f.volumes.keys()]).toEqual(['data_green']);
  });

  it("never prunes another instance's objects, even when the scope names that instance", async () => {
    const f = fakeEngine();
    f.containers.set('wp_green', {
      Id: 'wp-green',
      name: 'wp_green',
      labels: labelsOf('green', { [LABEL.siteId]: 'site-1' }),
      running: true,
    });
    const report = await f
      .applier('blue')
      .apply({ networks: [], volumes: [], containers: [] }, { [LABEL.instance]: 'green', [LABEL.siteId]: 'site-1' });
    expect(report.changes).toEqual([]);
    expect(f.containers.has('wp_green')).toBe(true);
  });
});

describe('ApplyService start', () => {
  it('makes anew a container whose start the Engine refuses with a stale task ("already exists"), once', async () => {
    const f = fakeEngine();
    await f.applier('blue').apply(planOf('blue'));
    const stale = f.containers.get('db_acme')!;
    stale.running = false;
    const start = f.docker.startContainer;
    f.docker.startContainer = async (id: string) => {
      if (id === stale.Id) throw new Error(`(HTTP code 500) server error - task ${id}: already exists`);
      return start(id);
    };
    const report = await f.applier('blue').apply(planOf('blue'));
    expect(report.changes).toEqual(['container db_acme replaced (the Engine kept a stale task for it)']);
    const made = f.containers.get('db_acme')!;
    expect(made.Id).not.toBe(stale.Id);
    expect(made.running).toBe(true);
  });

  it('passes on any other start failure without touching the container', async () => {
    const f = fakeEngine();
    await f.applier('blue').apply(planOf('blue'));
    const stopped = f.containers.get('db_acme')!;
    stopped.running = false;
    f.docker.startContainer = async () => {
      throw new Error('(HTTP code 500) server error - port is already allocated');
    };
    await expect(f.applier('blue').apply(planOf('blue'))).rejects.toThrow('port is already allocated');
    expect(f.containers.get('db_acme')!.Id).toBe(stopped.Id);
  });
});
