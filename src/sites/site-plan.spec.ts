import fc from 'fast-check';
import { LABEL } from '../docker/plan.types';
import {
  imageWithTag,
  names,
  outdatedNames,
  planSite,
  planTenant,
  restartPolicyOf,
  secretFingerprint,
  type PlanSettings,
  type SiteFacts,
  type TenantFacts,
} from './site-plan';
import { stableStringify } from '../common/json';

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

describe('planTenant', () => {
  const plan = planTenant(tenant, settings);

  it('gives the tenant its own network with an explicit subnet from the pool', () => {
    expect(plan.networks).toEqual([expect.objectContaining({ name: 'berth_acme', subnet: '10.64.2.0/24', gateway: '10.64.2.1' })]);
  });

  it('runs one database server with its data in a named volume and no published port', () => {
    const [db] = plan.containers;
    expect(db.name).toBe('db_acme');
    expect(db.create.Image).toBe('mariadb:10.11');
    expect(db.create.Env).toEqual(
      expect.arrayContaining(['MARIADB_ROOT_PASSWORD=rootpw-rootpw-rootpw', 'MYSQL_ROOT_PASSWORD=rootpw-rootpw-rootpw']),
    );
    expect(db.create.HostConfig?.Mounts).toEqual([{ Type: 'volume', Source: 'berth_acme_db', Target: '/var/lib/mysql' }]);
    expect(db.create.HostConfig?.PortBindings).toBeUndefined();
    expect(plan.volumes.map((v) => v.name)).toEqual(['berth_acme_db']);
  });

  it("labels every object as Berth's, with tenant, role and instance", () => {
    for (const o of [...plan.networks, ...plan.volumes]) {
      expect(o.labels).toMatchObject({ [LABEL.managedBy]: 'berth', [LABEL.tenant]: 'acme', [LABEL.instance]: 'default' });
    }
    expect(plan.containers[0].create.Labels).toMatchObject({ [LABEL.role]: 'db', [LABEL.tenant]: 'acme' });
  });
});

describe('planSite', () => {
  const [wp] = planSite(tenant, site, settings).containers;
  const host = wp.create.HostConfig ?? {};

  it('names the container wp_<tenant>_<site> and makes its root filesystem read-only', () => {
    expect(wp.name).toBe('wp_acme_blog');
    expect(host.ReadonlyRootfs).toBe(true);
  });

  it('allows writes only to the tmpfs paths WordPress needs and the site volume', () => {
    expect(Object.keys(host.Tmpfs ?? {}).sort()).toEqual(['/run/apache2', '/run/lock/apache2', '/tmp']);
    expect(host.Mounts).toEqual([{ Type: 'volume', Source: names.siteVolume('default', 'acme', 'blog'), Target: '/var/www/html' }]);
    expect(host.Binds).toBeUndefined();
  });

  it('links the tenant database server under the alias mysql and injects the connection settings', () => {
    expect(wp.create.NetworkingConfig?.EndpointsConfig?.berth_acme?.Links).toEqual(['db_acme:mysql']);
    expect(wp.create.Env).toEqual(
      expect.arrayContaining([
        'WORDPRESS_DB_HOST=mysql',
        'WORDPRESS_DB_USER=wp_1111',
        'WORDPRESS_DB_PASSWORD=site-password-123456',
        'WORDPRESS_DB_NAME=wp_1111',
        'WORDPRESS_DEBUG=1',
      ]),
    );
  });

  it('publishes port 80 on the configured address and the port reserved for the site', () => {
    expect(host.PortBindings).toEqual({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '20080' }] });
  });

  it('sets the restart policy and the limits asked for', () => {
    expect(host.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 5 });
    expect(host.Memory).toBe(256 * 1024 * 1024);
    expect(host.NanoCpus).toBe(500_000_000);
  });

  it("lets the caller's env not override the database settings", () => {
    const [c] = planSite(tenant, { ...site, env: { WORDPRESS_DB_HOST: 'evil' } }, settings).containers;
    expect(c.create.Env?.filter((e) => e.startsWith('WORDPRESS_DB_HOST='))).toEqual(['WORDPRESS_DB_HOST=mysql']);
  });

  it('hashes the spec: equal inputs give equal hashes, any change gives another', () => {
    const again = planSite(tenant, site, settings).containers[0];
    const changed = planSite(tenant, { ...site, restartPolicy: 'always' }, settings).containers[0];
    expect(again.create.Labels[LABEL.specHash]).toBe(wp.create.Labels[LABEL.specHash]);
    expect(changed.create.Labels[LABEL.specHash]).not.toBe(wp.create.Labels[LABEL.specHash]);
  });

  it('does not let running/stopped change the spec hash (stopping is not replacing)', () => {
    const stopped = planSite(tenant, { ...site, running: false }, settings).containers[0];
    expect(stopped.running).toBe(false);
    expect(stopped.create.Labels[LABEL.specHash]).toBe(wp.create.Labels[LABEL.specHash]);
  });
});

describe('every container', () => {
  const all = [...planTenant(tenant, settings).containers, ...planSite(tenant, site, settings).containers];

  it('runs an init as PID 1, which reaps the orphans a timed-out exec leaves behind', () => {
    for (const c of all) expect(c.create.HostConfig?.Init).toBe(true);
  });

  it("turns the image's health check off: Berth probes the sites itself, without an exec", () => {
    for (const c of all) expect(c.create.Healthcheck).toEqual({ Test: ['NONE'] });
  });
});

describe('helpers', () => {
  it('maps restart policies', () => {
    expect(restartPolicyOf('no')).toEqual({ Name: 'no' });
    expect(restartPolicyOf('unless-stopped')).toEqual({ Name: 'unless-stopped' });
    expect(restartPolicyOf('on-failure')).toEqual({ Name: 'on-failure' });
  });

  it('stringifies independently of key order', () => {
    expect(stableStringify({ b: 1, a: [{ d: 2, c: 3 }] })).toBe(stableStringify({ a: [{ c: 3, d: 2 }], b: 1 }));
  });
});

describe('imageWithTag', () => {
  it('swaps the tag, keeping registries with ports intact', () => {
    expect(imageWithTag('wordpress:6-apache', '6.4-apache')).toBe('wordpress:6.4-apache');
    expect(imageWithTag('wordpress', '6')).toBe('wordpress:6');
    expect(imageWithTag('registry.local:5000/wp/wordpress:6', '7')).toBe('registry.local:5000/wp/wordpress:7');
    expect(imageWithTag('registry.local:5000/wordpress', '7')).toBe('registry.local:5000/wordpress:7');
  });

  it('is used for a site that asks for a tag', () => {
    const [c] = planSite(tenant, { ...site, image: 'wordpress:6.4-apache' }, settings).containers;
    expect(c.create.Image).toBe('wordpress:6.4-apache');
  });
});

describe('imageWithTag with digest references', () => {
  const digest = 'sha256:' + 'a'.repeat(64);

  it('replaces a digest with the tag', () => {
    expect(imageWithTag(`wordpress@${digest}`, '6.4')).toBe('wordpress:6.4');
    expect(imageWithTag(`registry.local:5000/wp/wordpress@${digest}`, '7')).toBe('registry.local:5000/wp/wordpress:7');
  });

  it('replaces both the tag and the digest of name:tag@digest', () => {
    expect(imageWithTag(`wordpress:6-apache@${digest}`, '6.4-apache')).toBe('wordpress:6.4-apache');
    expect(imageWithTag(`registry.local:5000/wordpress:6@${digest}`, '7')).toBe('registry.local:5000/wordpress:7');
  });
});

describe('hardening', () => {
  const containers = [...planTenant(tenant, settings).containers, ...planSite(tenant, site, settings).containers];

  it.each(containers.map((c) => [c.name, c]))('%s drops every capability but the few it needs, and cannot gain privileges', (_name, c) => {
    const host = c.create.HostConfig ?? {};
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.CapAdd).not.toContain('SYS_ADMIN');
    expect(host.CapAdd).not.toContain('NET_RAW');
    expect(host.SecurityOpt).toEqual(['no-new-privileges']);
    expect(host.Privileged).toBe(false);
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.PidsLimit).toBe(256);
    expect(host.Memory).toBeGreaterThan(0);
    expect(host.NanoCpus).toBeGreaterThan(0);
    expect(host.Binds).toBeUndefined();
    expect((host.Mounts ?? []).every((m) => m.Type === 'volume')).toBe(true);
  });

  it('gives a site without limits of its own the tenant ceiling', () => {
    const [c] = planSite(tenant, { ...site, memoryMb: null, cpus: null }, settings).containers;
    expect(c.create.HostConfig?.Memory).toBe(2048 * 1024 * 1024);
    expect(c.create.HostConfig?.NanoCpus).toBe(2e9);
  });
});

describe('secrets and the spec hash', () => {
  const hashOf = (c: { create: { Labels: Record<string, string> } }) => c.create.Labels[LABEL.specHash];
  const sealedOnly = { ...site, dbPassword: undefined };
  const tenantSealedOnly = { ...tenant, dbRootPassword: undefined };

  it('is the same whether the plaintext is known or not, so the reconciler needs no decryption', () => {
    expect(hashOf(planSite(tenantSealedOnly, sealedOnly, settings).containers[0])).toBe(
      hashOf(planSite(tenant, site, settings).containers[0]),
    );
    expect(hashOf(planTenant(tenantSealedOnly, settings).containers[0])).toBe(hashOf(planTenant(tenant, settings).containers[0]));
  });

  it('does not depend on the plaintext, only on the sealed form', () => {
    const other = planSite(tenant, { ...site, dbPassword: 'another-password-1234' }, settings).containers[0];
    expect(hashOf(other)).toBe(hashOf(planSite(tenant, site, settings).containers[0]));
  });

  it('changes when a sealed secret changes', () => {
    expect(hashOf(planSite(tenant, { ...site, dbPasswordSealed: 'v1.site.sealed.b' }, settings).containers[0])).not.toBe(
      hashOf(planSite(tenant, site, settings).containers[0]),
    );
    expect(hashOf(planTenant({ ...tenant, dbRootPasswordSealed: 'v1.root.sealed.b' }, settings).containers[0])).not.toBe(
      hashOf(planTenant(tenant, settings).containers[0]),
    );
  });

  it('puts the plaintext into the container when known, and never the sealed form', () => {
    const [wp] = planSite(tenant, site, settings).containers;
    expect(wp.create.Env).toContain('WORDPRESS_DB_PASSWORD=site-password-123456');
    expect(JSON.stringify(wp.create)).not.toContain('sealed');
    const [db] = planTenant(tenant, settings).containers;
    expect(db.create.Env).toEqual(['MARIADB_ROOT_PASSWORD=rootpw-rootpw-rootpw', 'MYSQL_ROOT_PASSWORD=rootpw-rootpw-rootpw']);
  });

  it('leaves a plan without plaintext with fingerprints only (for comparing, never applying)', () => {
    const [wp] = planSite(tenant, sealedOnly, settings).containers;
    expect(wp.create.Env).toContain(`WORDPRESS_DB_PASSWORD=${secretFingerprint('v1.site.sealed.a')}`);
    expect(JSON.stringify(wp.create)).not.toContain('v1.site.sealed.a');
  });

  it("replaces only the secrets' own variables, not a user variable with a prototype name", () => {
    const [wp] = planSite(tenant, { ...site, env: { constructor: 'x', toString: 'y' } }, settings).containers;
    expect(wp.create.Env).toEqual(expect.arrayContaining(['constructor=x', 'toString=y']));
  });
});

describe('outdatedNames', () => {
  it('finds the names an earlier version gave a non-default instance, and none for default', () => {
    expect(outdatedNames('blue', ['berth-blue_db_acme', 'db_acme', 'berth_acme_blog_data'])).toEqual(['db_acme', 'berth_acme_blog_data']);
    expect(outdatedNames('default', ['db_acme', 'wp_acme_blog'])).toEqual([]);
  });
});

describe('names', () => {
  // SLUG_PATTERN, SITE_NAME_PATTERN and BERTH_INSTANCE's pattern (the DTOs load Nest, which unit tests cannot).
  const slug = fc.stringMatching(/^[a-z][a-z0-9-]{2,39}$/);
  const siteName = fc.stringMatching(/^[a-z][a-z0-9-]{1,38}[a-z0-9]$/);
  const instance = fc.oneof(fc.constant('default'), fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,30}$/));
  const all = (i: string, t: string, s: string) => [
    names.network(i, t),
    names.dbContainer(i, t),
    names.dbVolume(i, t),
    names.wpContainer(i, t, s),
    names.siteVolume(i, t, s),
  ];
  const legacy = (t: string, s: string) => [`berth_${t}`, `db_${t}`, `berth_${t}_db`, `wp_${t}_${s}`, `berth_${t}_${s}_data`];

  it('are the names Berth always used for instance default, so an upgrade finds its objects', () => {
    fc.assert(fc.property(slug, siteName, (t, s) => expect(all('default', t, s)).toEqual(legacy(t, s))));
    expect(all('default', 'acme', 'blog')).toEqual(['berth_acme', 'db_acme', 'berth_acme_db', 'wp_acme_blog', 'berth_acme_blog_data']);
  });

  it('differ between two instances and never equal a legacy name, whatever the tenants and sites', () => {
    const dockerName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
    fc.assert(
      fc.property(instance, instance, slug, siteName, slug, siteName, (i1, i2, t, s, t2, s2) => {
        fc.pre(i1 !== i2);
        const mine = all(i1, t, s);
        // The same tenant and site on the other instance (the case that clashed), and any other.
        const theirs = new Set([...all(i2, t, s), ...all(i2, t2, s2)]);
        const old = new Set([...legacy(t, s), ...legacy(t2, s2)]);
        return (
          new Set(mine).size === mine.length &&
          mine.every(
            (name) =>
              dockerName.test(name) && !theirs.has(name) && (i1 === 'default' || (!old.has(name) && name.startsWith(`berth-${i1}_`))),
          )
        );
      }),
      { numRuns: 1000 },
    );
  });

  it("are used for every object and reference of a non-default instance's plans", () => {
    const s = { ...settings, instance: 'blue' };
    const tp = planTenant(tenant, s);
    const [w] = planSite(tenant, site, s).containers;
    expect(tp.networks[0].name).toBe('berth-blue_berth_acme');
    expect(tp.volumes[0].name).toBe('berth-blue_berth_acme_db');
    expect(tp.containers[0].name).toBe('berth-blue_db_acme');
    expect(tp.containers[0].create.HostConfig?.Mounts?.[0].Source).toBe('berth-blue_berth_acme_db');
    expect(w.name).toBe('berth-blue_wp_acme_blog');
    expect(w.create.HostConfig?.NetworkMode).toBe('berth-blue_berth_acme');
    expect(w.create.HostConfig?.Mounts?.[0].Source).toBe('berth-blue_berth_acme_blog_data');
    expect(w.create.NetworkingConfig?.EndpointsConfig?.['berth-blue_berth_acme']?.Links).toEqual(['berth-blue_db_acme:mysql']);
  });
});
