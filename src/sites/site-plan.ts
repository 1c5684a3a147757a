import { createHash } from 'node:crypto';
import { LABEL, MANAGED_BY, type ContainerSpec, type Plan } from '../docker/plan.types';
import { stableStringify } from '../common/json';
import { subnetAt } from './subnets';
import { names } from '../docker/object-names';

/** What the plan needs to know about a tenant. */
export interface TenantFacts {
  slug: string;
  networkIndex: number;
  /** Plaintext, which only jobs have (they start the server); a plan made without it is for comparing. */
  dbRootPassword?: string;
  /** The sealed form: the spec hash covers its fingerprint, so it is known without decrypting. */
  dbRootPasswordSealed: string;
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
  /** Plaintext, as for the tenant's root password: jobs only. */
  dbPassword?: string;
  dbPasswordSealed: string;
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
 * No Docker health check (the images' HEALTHCHECK is turned off): each check is an exec, a
 * new `runc` process and the check's own, paid by every container all day. Berth probes
 * every site over HTTP itself (a site whose database server is down answers 500 and is
 * DOWN), and follows the Engine's events for containers that die. Measured on 100 idle
 * sites: README, Performance ("density").
 */
export const NO_HEALTHCHECK = { Test: ['NONE'] };

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

// Docker objects' names live with the Docker layer (the edge names WordPress services too).
export { DEFAULT_INSTANCE, namePrefix, names, outdatedNames } from '../docker/object-names';

function labels(
  s: Pick<PlanSettings, 'instance'>,
  tenant: string,
  role: string,
  site?: Pick<SiteFacts, 'name' | 'id'>,
): Record<string, string> {
  return {
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.instance]: s.instance,
    [LABEL.tenant]: tenant,
    ...(site ? { [LABEL.site]: site.name, [LABEL.siteId]: site.id } : {}),
    [LABEL.role]: role,
  };
}

/** A site's files volume's labels (a restore that must make the volume, where Swarm has not yet, gives it these). */
export function siteVolumeLabels(instance: string, tenantSlug: string, site: Pick<SiteFacts, 'name' | 'id'>): Record<string, string> {
  return labels({ instance }, tenantSlug, 'volume', site);
}

/**
 * Stands for a secret in the hashed spec: a fingerprint of its sealed form. So the reconciler
 * knows every expected hash from sealed values alone, and a changed secret still changes it.
 */
export function secretFingerprint(sealed: string): string {
  return `sealed:${createHash('sha256').update(sealed).digest('hex').slice(0, 16)}`;
}

/**
 * Labels the spec with the hash of its create options, taken while the secrets' environment
 * variables hold fingerprints; the plaintext (where known) goes in only afterwards.
 */
function withHash(spec: ContainerSpec, secrets: Record<string, string | undefined> = {}): ContainerSpec {
  const hash = createHash('sha256').update(stableStringify(spec.create)).digest('hex').slice(0, 16);
  spec.create.Labels[LABEL.specHash] = hash;
  const fingerprints: Record<string, string> = {};
  spec.create.Env = spec.create.Env?.map((e) => {
    const key = e.slice(0, e.indexOf('='));
    if (!Object.hasOwn(secrets, key)) return e;
    fingerprints[key] = e.slice(key.length + 1);
    const plain = secrets[key];
    return plain === undefined ? e : `${key}=${plain}`;
  });
  if (Object.keys(fingerprints).length) spec.secrets = fingerprints;
  return spec;
}

/**
 * `wordpress:6-apache` with tag `6.4` → `wordpress:6.4` (registry ports are not tags). A
 * digest pins one image, so a new tag replaces it too: `wordpress:6@sha256:…` → `wordpress:6.4`.
 */
export function imageWithTag(image: string, tag: string): string {
  const at = image.indexOf('@');
  const name = at === -1 ? image : image.slice(0, at);
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  const repo = colon > slash ? name.slice(0, colon) : name;
  return `${repo}:${tag}`;
}

/** `on-failure:5` → Docker's RestartPolicy. */
export function restartPolicyOf(policy: string): { Name: string; MaximumRetryCount?: number } {
  const [name, count] = policy.split(':');
  return name === 'on-failure' && count ? { Name: name, MaximumRetryCount: Number(count) } : { Name: name };
}

/** The objects a tenant's sites share: its private network and its database server. */
export function planTenant(t: TenantFacts, s: PlanSettings): Plan {
  const net = names.network(s.instance, t.slug);
  const { subnet, gateway } = subnetAt(s.subnetPool, s.subnetPrefix, t.networkIndex);
  const db = names.dbContainer(s.instance, t.slug);
  return {
    networks: [{ name: net, subnet, gateway, labels: labels(s, t.slug, 'network') }],
    volumes: [{ name: names.dbVolume(s.instance, t.slug), labels: labels(s, t.slug, 'db-volume') }],
    containers: [
      withHash(
        {
          name: db,
          running: true,
          create: {
            name: db,
            Image: s.dbImage,
            Env: [
              `MARIADB_ROOT_PASSWORD=${secretFingerprint(t.dbRootPasswordSealed)}`,
              `MYSQL_ROOT_PASSWORD=${secretFingerprint(t.dbRootPasswordSealed)}`,
            ],
            Labels: labels(s, t.slug, 'db'),
            Healthcheck: NO_HEALTHCHECK,
            HostConfig: {
              NetworkMode: net,
              RestartPolicy: { Name: 'unless-stopped' },
              ...hardening(DB_CAPS, s.pidsLimit, s.dbMemoryMb, s.dbCpus),
              Tmpfs: Object.fromEntries(DB_TMPFS.map((p) => [p, TMPFS_OPTIONS])),
              Mounts: [{ Type: 'volume', Source: names.dbVolume(s.instance, t.slug), Target: DB_DATA_PATH }],
            },
            NetworkingConfig: { EndpointsConfig: { [net]: { Aliases: [db] } } },
          },
        },
        { MARIADB_ROOT_PASSWORD: t.dbRootPassword, MYSQL_ROOT_PASSWORD: t.dbRootPassword },
      ),
    ],
  };
}

/** One site's own objects: its files volume and its read-only WordPress container. */
export function planSite(t: TenantFacts, site: SiteFacts, s: PlanSettings): Plan {
  const net = names.network(s.instance, t.slug);
  const volume = names.siteVolume(s.instance, t.slug, site.name);
  const name = names.wpContainer(s.instance, t.slug, site.name);
  const env = {
    ...site.env,
    WORDPRESS_DB_HOST: DB_ALIAS,
    WORDPRESS_DB_USER: site.dbUser,
    WORDPRESS_DB_PASSWORD: secretFingerprint(site.dbPasswordSealed),
    WORDPRESS_DB_NAME: site.dbName,
  };
  return {
    networks: [],
    volumes: [{ name: volume, labels: labels(s, t.slug, 'volume', site) }],
    containers: [
      withHash(
        {
          name,
          running: site.running,
          create: {
            name,
            Image: site.image ?? s.wordpressImage,
            Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
            Labels: labels(s, t.slug, 'wordpress', site),
            ExposedPorts: { '80/tcp': {} },
            Healthcheck: NO_HEALTHCHECK,
            HostConfig: {
              NetworkMode: net,
              ...hardening(WORDPRESS_CAPS, s.pidsLimit, site.memoryMb ?? t.maxMemoryMb, site.cpus ?? t.maxCpus),
              Tmpfs: Object.fromEntries(WRITABLE_TMPFS.map((p) => [p, TMPFS_OPTIONS])),
              Mounts: [{ Type: 'volume', Source: volume, Target: s.wordpressDataPath }],
              PortBindings: { '80/tcp': [{ HostIp: s.publishAddress, HostPort: String(site.hostPort) }] },
              RestartPolicy: restartPolicyOf(site.restartPolicy),
            },
            NetworkingConfig: { EndpointsConfig: { [net]: { Links: [`${names.dbContainer(s.instance, t.slug)}:${DB_ALIAS}`] } } },
          },
        },
        { WORDPRESS_DB_PASSWORD: site.dbPassword },
      ),
    ],
  };
}
