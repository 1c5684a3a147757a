/**
 * Container hardening and network isolation, checked on what the Docker Engine really runs:
 * every container Berth made is inspected, and a probe inside one tenant's WordPress
 * container tries to reach another tenant's database server and WordPress.
 */
import type Docker from 'dockerode';
import { TEST_INSTANCE, testNames } from './env';
import { createTenant, startHarness, type Harness } from './harness';
import { exec, provision, removeSuiteObjects } from './suite-helpers';

/** The capabilities Berth gives back after dropping all (site-plan.ts says why each). */
const ALLOWED_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID', 'NET_BIND_SERVICE', 'KILL'];
const DANGEROUS_CAPS = [
  'SYS_ADMIN',
  'NET_ADMIN',
  'NET_RAW',
  'SYS_PTRACE',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_BOOT',
  'SYS_TIME',
  'DAC_READ_SEARCH',
  'MKNOD',
  'SETFCAP',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'MAC_ADMIN',
  'MAC_OVERRIDE',
  'SYSLOG',
  'BPF',
  'PERFMON',
  'SYS_CHROOT',
  'SYS_RESOURCE',
  'SYS_NICE',
  'IPC_LOCK',
  'IPC_OWNER',
  'LEASE',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'SYS_PACCT',
  'SYS_TTY_CONFIG',
  'CHECKPOINT_RESTORE',
];
/** Bit numbers of capabilities in /proc/<pid>/status (linux/capability.h). */
const CAP_BIT: Record<string, number> = { CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, KILL: 5, SETGID: 6, SETUID: 7, NET_BIND_SERVICE: 10 };
const mask = (caps: string[]) => caps.reduce((m, c) => m | (1n << BigInt(CAP_BIT[c])), 0n);
const bare = (cap: string) => cap.toUpperCase().replace(/^CAP_/, '');

let h: Harness;
type Side = {
  slug: string;
  site: { id: string; name: string };
  wp: Docker.ContainerInspectInfo;
  db: Docker.ContainerInspectInfo;
  network: string;
};
let A: Side;
let B: Side;

beforeAll(async () => {
  h = await startHarness();
  const [ta, tb] = await Promise.all([createTenant(h), createTenant(h)]);
  const [sa, sb] = await Promise.all([provision(h, ta.key, { name: 'web' }), provision(h, tb.key, { name: 'web' })]);
  const side = async (slug: string, site: { id: string; name: string }): Promise<Side> => ({
    slug,
    site,
    wp: await h.docker.getContainer(testNames.wpContainer(slug, site.name)).inspect(),
    db: await h.docker.getContainer(testNames.dbContainer(slug)).inspect(),
    network: testNames.network(slug),
  });
  [A, B] = await Promise.all([side(ta.tenant.slug, sa), side(tb.tenant.slug, sb)]);
});
afterAll(async () => {
  await h.stop();
  await removeSuiteObjects();
});

describe('every container Berth made is hardened', () => {
  let all: Docker.ContainerInspectInfo[];
  beforeAll(async () => {
    // This suite's two tenants only: containers left by earlier suites are orphans to this
    // Berth, and its reconciler may remove them between a listing and an inspection.
    const lists = await Promise.all(
      [A.slug, B.slug].map((slug) =>
        h.docker.listContainers({ all: true, filters: { label: [`berth.instance=${TEST_INSTANCE}`, `berth.tenant=${slug}`] } }),
      ),
    );
    all = await Promise.all(lists.flat().map((c) => h.docker.getContainer(c.Id).inspect()));
  });

  it('finds the containers of both tenants (and checks each one below)', () => {
    const names = all.map((c) => c.Name.replace(/^\//, ''));
    expect(names).toEqual(
      expect.arrayContaining([
        testNames.wpContainer(A.slug, 'web'),
        testNames.dbContainer(A.slug),
        testNames.wpContainer(B.slug, 'web'),
        testNames.dbContainer(B.slug),
      ]),
    );
  });

  it('drops every capability and gives back only a few harmless ones', () => {
    const problems: string[] = [];
    for (const c of all) {
      const drop = ((c.HostConfig.CapDrop ?? []) as string[]).map(bare);
      const add = ((c.HostConfig.CapAdd ?? []) as string[]).map(bare);
      if (!drop.includes('ALL')) problems.push(`${c.Name}: CapDrop ${JSON.stringify(c.HostConfig.CapDrop)}`);
      if (add.length > 7 || add.some((cap) => !ALLOWED_CAPS.includes(cap)) || add.some((cap) => DANGEROUS_CAPS.includes(cap)))
        problems.push(`${c.Name}: CapAdd ${JSON.stringify(c.HostConfig.CapAdd)}`);
    }
    expect(problems).toEqual([]);
  });

  it('sets no-new-privileges, PID, memory and CPU limits, a read-only root, and is not privileged', () => {
    const problems: string[] = [];
    for (const c of all) {
      const hc = c.HostConfig;
      if (!((hc.SecurityOpt ?? []) as string[]).some((o) => /^no-new-privileges(:true)?$/.test(o)))
        problems.push(`${c.Name}: SecurityOpt ${JSON.stringify(hc.SecurityOpt)}`);
      if (!(Number(hc.PidsLimit) > 0)) problems.push(`${c.Name}: PidsLimit ${hc.PidsLimit}`);
      if (!(Number(hc.Memory) > 0)) problems.push(`${c.Name}: Memory ${hc.Memory}`);
      if (!(Number(hc.NanoCpus) > 0)) problems.push(`${c.Name}: NanoCpus ${hc.NanoCpus}`);
      if (hc.ReadonlyRootfs !== true) problems.push(`${c.Name}: ReadonlyRootfs ${hc.ReadonlyRootfs}`);
      if (hc.Privileged !== false) problems.push(`${c.Name}: Privileged ${hc.Privileged}`);
      if ((hc.Devices ?? []).length) problems.push(`${c.Name}: Devices ${JSON.stringify(hc.Devices)}`);
      for (const mode of ['NetworkMode', 'PidMode', 'IpcMode', 'UTSMode', 'UsernsMode'] as const) {
        const value = (hc as unknown as Record<string, string | undefined>)[mode];
        if (value === 'host') problems.push(`${c.Name}: ${mode} host`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('mounts only named volumes: no host path, no Docker socket', () => {
    const problems: string[] = [];
    for (const c of all) {
      if ((c.HostConfig.Binds ?? []).length) problems.push(`${c.Name}: Binds ${JSON.stringify(c.HostConfig.Binds)}`);
      for (const m of c.Mounts) {
        if (m.Type !== 'volume') problems.push(`${c.Name}: ${m.Type} mount ${m.Source} -> ${m.Destination}`);
        if (/docker\.sock/.test(`${m.Source} ${m.Destination}`)) problems.push(`${c.Name}: Docker socket mounted`);
      }
      if (c.Mounts.length < 1) problems.push(`${c.Name}: no data volume`);
    }
    expect(problems).toEqual([]);
  });

  it('database servers publish no port; WordPress publishes port 80 on 127.0.0.1 only', () => {
    const problems: string[] = [];
    for (const c of all) {
      const role = c.Config.Labels['berth.role'];
      const bindings = Object.entries((c.HostConfig.PortBindings ?? {}) as Record<string, { HostIp: string; HostPort: string }[]>);
      const live = Object.values(c.NetworkSettings.Ports ?? {})
        .filter((b) => b !== null)
        .flat();
      if (role === 'db' && (bindings.length || live.length || c.HostConfig.PublishAllPorts))
        problems.push(`${c.Name}: publishes ${JSON.stringify(c.HostConfig.PortBindings)}`);
      if (
        role === 'wordpress' &&
        (bindings.length !== 1 || bindings[0][0] !== '80/tcp' || bindings[0][1].some((b) => b.HostIp !== '127.0.0.1'))
      )
        problems.push(`${c.Name}: publishes ${JSON.stringify(c.HostConfig.PortBindings)}`);
      if (role !== 'db' && role !== 'wordpress') problems.push(`${c.Name}: unknown role ${role}`);
    }
    expect(problems).toEqual([]);
  });

  it("each container is on its own tenant's network only", () => {
    const problems: string[] = [];
    for (const c of all) {
      const networks = Object.keys(c.NetworkSettings.Networks ?? {});
      if (networks.length !== 1 || networks[0] !== testNames.network(c.Config.Labels['berth.tenant']))
        problems.push(`${c.Name}: networks ${networks.join(', ')}`);
    }
    expect(problems).toEqual([]);
  });

  it('the kernel agrees: the processes run with exactly those capabilities and no new privileges', async () => {
    const status = async (container: string) => {
      const { out } = await exec(h.docker, container, ['cat', '/proc/1/status']);
      const field = (name: string) => out.match(new RegExp(`^${name}:\\s*(\\S+)`, 'm'))?.[1];
      return { bnd: BigInt(`0x${field('CapBnd')}`), eff: BigInt(`0x${field('CapEff')}`), noNewPrivs: field('NoNewPrivs') };
    };
    const wpCaps = ((A.wp.HostConfig.CapAdd ?? []) as string[]).map(bare);
    const dbCaps = ((A.db.HostConfig.CapAdd ?? []) as string[]).map(bare);
    const wp = await status(A.wp.Id);
    expect(wp).toEqual({ bnd: mask(wpCaps), eff: wp.eff & mask(wpCaps), noNewPrivs: '1' });
    const db = await status(A.db.Id);
    expect(db).toEqual({ bnd: mask(dbCaps), eff: db.eff & mask(dbCaps), noNewPrivs: '1' });
    // NET_RAW (bit 13), SYS_ADMIN (21) and SYS_PTRACE (19) are outside the bounding set.
    for (const bit of [12n, 13n, 19n, 21n]) expect(wp.bnd & (1n << bit)).toBe(0n);
    // Root filesystems are read-only for the database server too.
    expect((await exec(h.docker, A.db.Id, ['sh', '-c', 'echo x > /probe'])).code).not.toBe(0);
    expect((await exec(h.docker, A.wp.Id, ['sh', '-c', 'echo x > /probe'])).code).not.toBe(0);
  });
});

describe('tenants cannot reach each other', () => {
  /** Runs busybox nc inside tenant A's WordPress container. */
  const probe = async (host: string, port: number, send = '') => {
    const r = await exec(h.docker, A.wp.Id, ['sh', '-c', `printf '${send}' | nc -w 2 ${host} ${port}`]);
    return { ...r, target: `${host}:${port}` };
  };
  const ipOf = (c: Docker.ContainerInspectInfo, network: string) => c.NetworkSettings.Networks[network].IPAddress;
  const HTTP = 'GET / HTTP/1.0\\r\\n\\r\\n';

  it("tenant A's own database server answers, by name, alias and IP", async () => {
    for (const host of [testNames.dbContainer(A.slug), 'mysql', ipOf(A.db, A.network)]) {
      const r = await probe(host, 3306);
      expect({ target: r.target, greeting: /MariaDB/.test(r.out) }).toEqual({ target: r.target, greeting: true });
    }
  });

  it("tenant B's database server and WordPress are unreachable by name and by IP", async () => {
    // B is up: its WordPress answers on its published port from the host.
    const port = Number(B.wp.HostConfig.PortBindings?.['80/tcp']?.[0]?.HostPort);
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toContain('berth-stub-wordpress');
    const results = await Promise.all([
      probe(testNames.dbContainer(B.slug), 3306),
      probe(ipOf(B.db, B.network), 3306),
      probe(testNames.wpContainer(B.slug, B.site.name), 80, HTTP),
      probe(ipOf(B.wp, B.network), 80, HTTP),
    ]);
    for (const r of results) {
      expect({ target: r.target, reached: /MariaDB|berth-stub-wordpress/.test(r.out), exit: r.code === 0 }).toEqual({
        target: r.target,
        reached: false,
        exit: false,
      });
    }
    // Names of B's containers do not even resolve on A's network.
    expect(results[0].out).toMatch(/bad address/);
    expect(results[2].out).toMatch(/bad address/);
  });

  it("tenant B's published port is not reachable from inside A through the gateways", async () => {
    const port = Number(B.wp.HostConfig.PortBindings?.['80/tcp']?.[0]?.HostPort);
    const gatewayA = A.wp.NetworkSettings.Networks[A.network].Gateway;
    const gatewayB = B.wp.NetworkSettings.Networks[B.network].Gateway;
    expect(gatewayA).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    for (const host of [gatewayA, gatewayB, '127.0.0.1']) {
      const r = await probe(host, port, HTTP);
      expect({ target: r.target, reached: /berth-stub-wordpress/.test(r.out) }).toEqual({ target: r.target, reached: false });
    }
    // Control: A's own WordPress answers the same probe on its own address.
    const own = await probe(ipOf(A.wp, A.network), 80, HTTP);
    expect(own.out).toContain('berth-stub-wordpress');
  });
});
