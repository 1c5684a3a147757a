import { createHash } from 'node:crypto';
import { LABEL, MANAGED_BY, type ContainerSpec, type Plan } from '../docker/plan.types';
import { subnetAt } from './subnets';

/** What the plan needs to know about a tenant. */
export interface TenantFacts {
  slug: string;
  networkIndex: number;
  dbRootPassword: string;
  /** Limits a site gets when it asks for none. */
  maxMemoryMb: number;
  maxCpus: number;
}

/** What the plan needs to know about a site. */
export interface SiteFacts {
  id: string;
  name: string;
  env: Record<string, string>;
  restartPolicy: string;
  memoryMb: number | null;
  cpus: number | null;
  dbName: string;
  dbUser: string;
  dbPassword: string;
  /** The host port reserved for the site. */
  hostPort: number;
  /** The WordPress image, when the site runs another tag than the configured image's. */
  image?: string;
  running: boolean;
}

export interface PlanSettings {
  /** Names this Berth installation, so several can share one Docker Engine. */
  instance: string;
  wordpressImage: string;
  dbImage: string;
  wordpressDataPath: string;
  publishAddress: string;
  subnetPool: string;
  subnetPrefix: number;
  pidsLimit: number;
  dbMemoryMb: number;
  dbCpus: number;
}

/** The alias under which WordPress finds its tenant's database server. */
export const DB_ALIAS = 'mysql';
export const DB_DATA_PATH = '/var/lib/mysql';
export const WRITABLE_TMPFS = ['/run/apache2', '/run/lock/apache2', '/tmp'] as const;
export const DB_TMPFS = ['/run/mysqld', '/tmp'] as const;
const TMPFS_OPTIONS = 'rw,noexec,nosuid,size=64m';

/**
 * Every capability is dropped and only these are given back. Both images start as root to
 * own their volume (CHOWN, DAC_OVERRIDE, FOWNER) and then switch user (SETUID, SETGID);
 * Apache binds port 80; the database entrypoint stops its temporary server (KILL).
 */
export const WORDPRESS_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID', 'NET_BIND_SERVICE'];
export const DB_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID', 'KILL'];

/**
 * Docker's own health checks, if the image has one, at a long interval: each check is an
 * exec (a new runc process), and Berth already probes every site over HTTP and watches the
 * database server. Without `Test` the image's command is kept; an image without a
 * HEALTHCHECK gets none. Durations are in nanoseconds.
 */
export const HEALTHCHECK_TIMING = { Interval: 60e9, Timeout: 10e9, StartPeriod: 120e9, Retries: 3 };

function hardening(caps: string[], pidsLimit: number, memoryMb: number, cpus: number) {
  return {
    // An init (tini) as PID 1 reaps orphans: a timed-out exec or health check leaves its
    // children to PID 1, and mariadbd or Apache as PID 1 never reap them (zombies hold PIDs).
    Init: true,
    ReadonlyRootfs: true,
    CapDrop: ['ALL'],
    CapAdd: caps,
    SecurityOpt: ['no-new-privileges'],
    Privileged: false,
    PidsLimit: pidsLimit,
    Memory: memoryMb * 1024 * 1024,
    NanoCpus: Math.round(cpus * 1e9),
  };
}

export const names = {
  network: (t: string) => `berth_${t}`,
  dbContainer: (t: string) => `db_${t}`,
  dbVolume: (t: string) => `berth_${t}_db`,
  wpContainer: (t: string, s: string) => `wp_${t}_${s}`,
  siteVolume: (t: string, s: string) => `berth_${t}_${s}_data`,
};

function labels(s: PlanSettings, tenant: string, role: string, site?: SiteFacts): Record<string, string> {
  return {
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.instance]: s.instance,
    [LABEL.tenant]: tenant,
    ...(site ? { [LABEL.site]: site.name, [LABEL.siteId]: site.id } : {}),
    [LABEL.role]: role,
  };
}

/** Deterministic JSON (sorted keys), so equal specs hash equally. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function withHash(spec: ContainerSpec): ContainerSpec {
  const hash = createHash('sha256').update(stableStringify(spec.create)).digest('hex').slice(0, 16);
  spec.create.Labels[LABEL.specHash] = hash;
  return spec;
}

/** `wordpress:6-apache` with tag `6.4` → `wordpress:6.4` (registry ports are not tags). */
export function imageWithTag(image: string, tag: string): string {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  const repo = colon > slash ? image.slice(0, colon) : image;
  return `${repo}:${tag}`;
}

/** `on-failure:5` → Docker's RestartPolicy. */
export function restartPolicyOf(policy: string): { Name: string; MaximumRetryCount?: number } {
  const [name, count] = policy.split(':');
  return name === 'on-failure' && count ? { Name: name, MaximumRetryCount: Number(count) } : { Name: name };
}

/** The objects a tenant's sites share: its private network and its database server. */
export function planTenant(t: TenantFacts, s: PlanSettings): Plan {
  const net = names.network(t.slug);
  const { subnet, gateway } = subnetAt(s.subnetPool, s.subnetPrefix, t.networkIndex);
  const db = names.dbContainer(t.slug);
  return {
    networks: [{ name: net, subnet, gateway, labels: labels(s, t.slug, 'network') }],
    volumes: [{ name: names.dbVolume(t.slug), labels: labels(s, t.slug, 'db-volume') }],
    containers: [
      withHash({
        name: db,
        running: true,
        create: {
          name: db,
          Image: s.dbImage,
          Env: [`MARIADB_ROOT_PASSWORD=${t.dbRootPassword}`, `MYSQL_ROOT_PASSWORD=${t.dbRootPassword}`],
          Labels: labels(s, t.slug, 'db'),
          Healthcheck: HEALTHCHECK_TIMING,
          HostConfig: {
            NetworkMode: net,
            RestartPolicy: { Name: 'unless-stopped' },
            ...hardening(DB_CAPS, s.pidsLimit, s.dbMemoryMb, s.dbCpus),
            Tmpfs: Object.fromEntries(DB_TMPFS.map((p) => [p, TMPFS_OPTIONS])),
            Mounts: [{ Type: 'volume', Source: names.dbVolume(t.slug), Target: DB_DATA_PATH }],
          },
          NetworkingConfig: { EndpointsConfig: { [net]: { Aliases: [db] } } },
        },
      }),
    ],
  };
}

/** One site's own objects: its files volume and its read-only WordPress container. */
export function planSite(t: TenantFacts, site: SiteFacts, s: PlanSettings): Plan {
  const net = names.network(t.slug);
  const volume = names.siteVolume(t.slug, site.name);
  const name = names.wpContainer(t.slug, site.name);
  const env = {
    ...site.env,
    WORDPRESS_DB_HOST: DB_ALIAS,
    WORDPRESS_DB_USER: site.dbUser,
    WORDPRESS_DB_PASSWORD: site.dbPassword,
    WORDPRESS_DB_NAME: site.dbName,
  };
  return {
    networks: [],
    volumes: [{ name: volume, labels: labels(s, t.slug, 'volume', site) }],
    containers: [
      withHash({
        name,
        running: site.running,
        create: {
          name,
          Image: site.image ?? s.wordpressImage,
          Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
          Labels: labels(s, t.slug, 'wordpress', site),
          ExposedPorts: { '80/tcp': {} },
          Healthcheck: HEALTHCHECK_TIMING,
          HostConfig: {
            NetworkMode: net,
            ...hardening(WORDPRESS_CAPS, s.pidsLimit, site.memoryMb ?? t.maxMemoryMb, site.cpus ?? t.maxCpus),
            Tmpfs: Object.fromEntries(WRITABLE_TMPFS.map((p) => [p, TMPFS_OPTIONS])),
            Mounts: [{ Type: 'volume', Source: volume, Target: s.wordpressDataPath }],
            PortBindings: { '80/tcp': [{ HostIp: s.publishAddress, HostPort: String(site.hostPort) }] },
            RestartPolicy: restartPolicyOf(site.restartPolicy),
          },
          NetworkingConfig: { EndpointsConfig: { [net]: { Links: [`${names.dbContainer(t.slug)}:${DB_ALIAS}`] } } },
        },
      }),
    ],
  };
}
