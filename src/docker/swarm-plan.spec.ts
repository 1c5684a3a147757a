import { planSite, planTenant, secretFingerprint, type PlanSettings, type SiteFacts, type TenantFacts } from '../sites/site-plan';
import { LABEL } from './plan.types';
import { overlayNetwork, secretName, serviceDrift, serviceSpec, swarmRestartPolicy } from './swarm-plan';

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
const tenant: TenantFacts = {
  slug: 'acme',
  networkIndex: 3,
  dbRootPassword: 'rootpw-rootpw-rootpw',
  dbRootPasswordSealed: 'v1.root.sealed.a',
  maxMemoryMb: 2048,
  maxCpus: 2,
};
const site: SiteFacts = {
  id: '11111111-2222-3333-4444-555555555555',
  name: 'blog',
  env: { WORDPRESS_DEBUG: '1' },
  restartPolicy: 'on-failure:5',
  memoryMb: 256,
  cpus: 0.5,
  dbName: 'wp_1111',
  dbUser: 'wp_1111',
  dbPassword: 'site-password-123456',
  dbPasswordSealed: 'v1.site.sealed.a',
  hostPort: 20080,
  running: true,
};
const where = { nodeId: 'node-abc' };

describe('serviceSpec: a plan container as a Swarm service', () => {
  const db = planTenant(tenant, settings).containers[0];
  const wp = planSite(tenant, site, settings).containers[0];
  const dbService = serviceSpec(db, where, ['mysql']);
  const wpService = serviceSpec(wp, where);
  const task = (s: typeof dbService) => s.TaskTemplate as { ContainerSpec: Record<string, unknown> } & Record<string, unknown>;

  it('pins the task to the tenant node, on the tenant overlay network, with no virtual IP', () => {
    expect(task(dbService).Placement).toEqual({ Constraints: ['node.id==node-abc'] });
    expect(task(dbService).Networks).toEqual([{ Target: 'berth_acme', Aliases: ['mysql'] }]);
    expect(task(wpService).Networks).toEqual([{ Target: 'berth_acme', Aliases: [] }]);
    expect(dbService.EndpointSpec).toEqual({ Mode: 'dnsrr' });
    expect(dbService.Mode).toEqual({ Replicated: { Replicas: 1 } });
    expect(serviceSpec({ ...wp, running: false }, where).Mode).toEqual({ Replicated: { Replicas: 0 } });
  });

  it('keeps the hardening: read-only root, init, every capability dropped but the few, tmpfs, limits as reservations', () => {
    const c = task(wpService).ContainerSpec;
    expect(c).toMatchObject({ ReadOnly: true, Init: true, CapabilityDrop: ['ALL'], Image: 'wordpress:6-apache' });
    expect(c.CapabilityAdd).toEqual(wp.create.HostConfig?.CapAdd);
    expect(c.Mounts).toEqual([
      {
        Type: 'volume',
        Source: 'berth_acme_blog_data',
        Target: '/var/www/html',
        ReadOnly: false,
        VolumeOptions: { NoCopy: false, Labels: wp.create.Labels, DriverConfig: { Name: 'local', Options: {} } },
      },
      ...['/run/apache2', '/run/lock/apache2', '/tmp'].map((Target) => ({
        Type: 'tmpfs',
        Source: '',
        Target,
        TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1777 },
      })),
    ]);
    expect(task(wpService).Resources).toEqual({
      Limits: { MemoryBytes: 256 * 1024 * 1024, NanoCPUs: 5e8, Pids: 256 },
      Reservations: { MemoryBytes: 256 * 1024 * 1024, NanoCPUs: 5e8 },
    });
    expect(wpService.Labels).toEqual(wp.create.Labels);
    expect(c.HealthCheck).toEqual(wp.create.Healthcheck);
  });

  it('moves secrets out of the environment into Docker secrets named by their fingerprint', () => {
    const c = task(wpService).ContainerSpec;
    const name = secretName('wp_acme_blog', 'WORDPRESS_DB_PASSWORD', secretFingerprint('v1.site.sealed.a'));
    expect(c.Env).toContain(`WORDPRESS_DB_PASSWORD_FILE=/run/secrets/${name}`);
    expect((c.Env as string[]).join('\n')).not.toContain('site-password-123456');
    expect((c.Env as string[]).some((e) => e.startsWith('WORDPRESS_DB_PASSWORD='))).toBe(false);
    expect(c.Env).toContain('WORDPRESS_DB_HOST=mysql');
    expect(c.Secrets).toEqual([{ SecretName: name, File: { Name: name, UID: '0', GID: '0', Mode: 0o444 } }]);
    const dbEnv = task(dbService).ContainerSpec.Env as string[];
    expect(dbEnv.filter((e) => e.includes('_FILE='))).toHaveLength(2);
    expect(dbEnv.join('\n')).not.toContain('rootpw-rootpw-rootpw');
    // A new password is a new secret (Swarm's secrets are immutable): the service changes with it.
    const rotated = serviceSpec(planSite(tenant, { ...site, dbPasswordSealed: 'v1.site.sealed.b' }, settings).containers[0], where);
    expect(task(rotated).ContainerSpec.Secrets).not.toEqual(c.Secrets);
    // The plaintext does not name the secret: a plan made without it (for comparing) names the same one.
    const compared = serviceSpec(planSite(tenant, { ...site, dbPassword: undefined }, settings).containers[0], where);
    expect(task(compared).ContainerSpec.Secrets).toEqual(c.Secrets);
  });

  it("maps the site's restart policy to Swarm's, with a delay and the attempts", () => {
    expect(task(wpService).RestartPolicy).toEqual({ Condition: 'on-failure', Delay: 5e9, MaxAttempts: 5 });
    expect(swarmRestartPolicy({ Name: 'always' })).toEqual({ Condition: 'any', Delay: 5e9, MaxAttempts: 0 });
    expect(swarmRestartPolicy({ Name: 'unless-stopped' }).Condition).toBe('any');
    expect(swarmRestartPolicy({ Name: 'no' }).Condition).toBe('none');
    expect(task(dbService).RestartPolicy).toMatchObject({ Condition: 'any' });
  });

  it('publishes no port: sites are reached over the network', () => {
    expect(wpService.EndpointSpec?.Ports).toBeUndefined();
  });

  it('makes the tenant network an overlay only its services join', () => {
    const net = planTenant(tenant, settings).networks[0];
    expect(overlayNetwork(net, 1400)).toMatchObject({
      Name: 'berth_acme',
      Driver: 'overlay',
      Attachable: false,
      IPAM: { Config: [{ Subnet: net.subnet, Gateway: net.gateway }] },
      Options: { 'com.docker.network.driver.mtu': '1400' },
    });
  });
});

describe('serviceDrift: why a running service must be updated', () => {
  const db = planTenant(tenant, settings).containers[0];
  const planned = serviceSpec(db, where, ['mysql']);
  // What Swarm answers on inspect: the network by its id, not its name.
  const asStored = (s: typeof planned) => {
    const copy = structuredClone(s);
    const t = copy.TaskTemplate as { Networks: { Target: string; Aliases: string[] }[] };
    t.Networks = t.Networks.map((n) => ({ ...n, Target: 'x1y2z3networkid' }));
    return copy;
  };

  it('finds nothing to do when only the network name became its id', () => {
    expect(serviceDrift(asStored(planned), planned)).toBeUndefined();
  });

  it('names each change that needs an update', () => {
    expect(
      serviceDrift(
        asStored(planned),
        serviceSpec({ ...db, create: { ...db.create, Labels: { ...db.create.Labels, [LABEL.specHash]: 'other' } } }, where, ['mysql']),
      ),
    ).toBe('spec changed');
    expect(serviceDrift(asStored(planned), serviceSpec({ ...db, running: false }, where, ['mysql']))).toBe('stopped');
    expect(serviceDrift(asStored(serviceSpec({ ...db, running: false }, where, ['mysql'])), planned)).toBe('started');
    expect(serviceDrift(asStored(planned), serviceSpec(db, { nodeId: 'node-xyz' }, ['mysql']))).toBe('moved to another node');
    expect(serviceDrift(asStored(planned), serviceSpec(db, where, ['mysql', 'db']))).toBe('network aliases changed');
    expect(serviceDrift(undefined, planned)).toBe('spec changed');
  });
});

describe('secretName', () => {
  it('names a secret by its service, variable and value, within Swarm’s 64 characters', () => {
    expect(secretName('db_acme', 'MARIADB_ROOT_PASSWORD', 'v1.a')).toMatch(/^db_acme_mariadb_root_password_[0-9a-f]{12}$/);
    const long = 'berth-e2e0_wp_a-tenant-with-a-long-slug_a-site-with-a-long-name';
    const a = secretName(long, 'WORDPRESS_DB_PASSWORD', 'v1.a');
    const b = secretName(long, 'WORDPRESS_DB_PASSWORD', 'v1.b');
    const other = secretName(`${long}2`, 'WORDPRESS_DB_PASSWORD', 'v1.a');
    for (const n of [a, b, other]) expect(n).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9]$/);
    expect(a.startsWith('berth-e2e0_wp_a-tenant')).toBe(true);
    // Another value, another service: another name.
    expect(new Set([a, b, other]).size).toBe(3);
  });
});
