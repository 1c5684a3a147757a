import { z } from 'zod';
import { parseIpv4Cidr, parseNetworks } from '../common/cidr';
import { certPath, readEngineTls } from '../common/engine-tls';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const ROLES = ['api', 'worker', 'all'] as const;
export type Role = (typeof ROLES)[number];

/** Every environment variable Berth reads, with its meaning and default. */
const schema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  BERTH_ROLE: z.enum(ROLES).default('all'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'a postgresql:// URL'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'a redis:// URL'),
  DOCKER_HOST: z.string().default('unix:///var/run/docker.sock'),
  /**
   * As for the docker CLI: reach a tcp:// Engine (DOCKER_HOST, and a Swarm's nodes) over TLS,
   * presenting DOCKER_CERT_PATH's cert.pem and key.pem and trusting only its ca.pem. `1` or
   * `true` turns it on, `0` or `false` off (the docker CLI takes any value as on).
   */
  DOCKER_TLS_VERIFY: bool.optional(),
  /** The directory with ca.pem, cert.pem and key.pem (default ~/.docker, as for the docker CLI). */
  DOCKER_CERT_PATH: z.string().min(1).optional(),
  /**
   * docker: one Docker Engine (DOCKER_HOST), every site on it. swarm: DOCKER_HOST is a Swarm
   * manager; each tenant lives on one node, chosen by room for reservations.
   */
  BERTH_ENGINE: z.enum(['docker', 'swarm']).default('docker'),
  /** MTU of the tenants' overlay networks (Swarm), when the hosts' links need less than Docker's default. */
  BERTH_OVERLAY_MTU: z.coerce.number().int().min(576).max(9000).optional(),
  /**
   * How Berth reaches one node's own Docker Engine on a Swarm (for what the manager cannot do:
   * exec in a task's container, a node's volumes): `{address}` is the node's address as Swarm
   * reports it, e.g. `tcp://{address}:2376` with DOCKER_TLS_VERIFY (the same client certificate
   * and CA as for the manager). Without TLS, whoever reaches that port is root on the node:
   * Berth warns at start. Required with BERTH_ENGINE=swarm.
   */
  BERTH_SWARM_NODE_ENGINE: z
    .string()
    .regex(/^(tcp|https?):\/\/[^/]*\{address\}[^/]*\/?$/, 'a URL with {address}, such as tcp://{address}:2376')
    .optional(),
  /**
   * The overlay network the edge (a Caddy service of the operator's) and every WordPress
   * service join on a Swarm; databases never join it.
   */
  BERTH_SWARM_EDGE_NETWORK: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/)
    .default('berth-edge'),
  BERTH_ADMIN_KEY: z.string().min(32, 'at least 32 characters').optional(),
  /** 32 bytes, base64: seals database passwords at rest (AES-256-GCM). */
  BERTH_ENCRYPTION_KEY: z
    .string()
    .refine((v) => Buffer.from(v, 'base64').length === 32, '32 bytes encoded in base64')
    .optional(),
  /** Labels every Docker object, so several installations can share one engine. */
  BERTH_INSTANCE: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'lowercase letters, digits, hyphens')
    .default('default'),
  BERTH_WORDPRESS_IMAGE: z.string().min(1).default('wordpress:6-apache'),
  BERTH_DB_IMAGE: z.string().min(1).default('mariadb:10.11'),
  /** Where the site's own files live inside the WordPress image. */
  BERTH_WORDPRESS_DATA_PATH: z.string().startsWith('/').default('/var/www/html'),
  /** Host address on which site ports are published. */
  BERTH_PUBLISH_ADDRESS: z.ipv4().default('127.0.0.1'),
  /** Pool the tenants' private networks are cut from, one subnet each. */
  BERTH_SUBNET_POOL: z
    .string()
    .default('10.64.0.0/12')
    .superRefine((v, ctx) => {
      try {
        const { bits } = parseIpv4Cidr(v);
        if (bits < 8 || bits > 29) ctx.addIssue({ code: 'custom', message: `"${v}": a pool from /8 to /29 (such as 10.64.0.0/12)` });
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    }),
  /** Host ports Berth reserves for sites, one each, kept across restarts (outside the kernel's ephemeral range). */
  BERTH_PORT_RANGE: z
    .string()
    .regex(/^\d{1,5}-\d{1,5}$/, 'a range such as 20000-29999')
    .transform((v) => v.split('-').map(Number) as [number, number])
    .refine(([lo, hi]) => lo >= 1024 && hi <= 65535 && lo <= hi, 'ports from 1024 to 65535, low-high')
    .default([20000, 29999]),
  BERTH_SUBNET_PREFIX: z.coerce.number().int().min(16).max(29).default(24),
  BERTH_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
  /**
   * Site jobs that create, start and wait for containers on the engine at once (across every
   * worker process of the instance); the others wait for a slot. Starting containers and
   * database servers is CPU-bound on the host: beyond about twice its cores, more at once only
   * slows each (see README, Performance). Unset: twice the CPUs the engine reports (each
   * node's own on a Swarm), asked again every 10 minutes.
   */
  BERTH_ENGINE_SLOTS: z.coerce.number().int().min(1).max(256).optional(),
  BERTH_JOB_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  BERTH_JOB_BACKOFF_MS: z.coerce.number().int().min(0).default(2000),
  /** Upper bound for one step of a job (waiting for the database, for HTTP, ...). */
  BERTH_STEP_TIMEOUT_MS: z.coerce.number().int().min(1000).default(120_000),
  /** Site monitoring: probe interval and timeout, and failures in a row that mean DOWN. */
  BERTH_PROBE_INTERVAL_MS: z.coerce.number().int().min(200).default(5000),
  BERTH_PROBE_TIMEOUT_MS: z.coerce.number().int().min(100).default(3000),
  BERTH_PROBE_FAILURES: z.coerce.number().int().min(1).max(100).default(3),
  /** On a Swarm, the manager's list of nodes is read this often: a node that is not ready turns its sites DOWN. */
  BERTH_NODE_WATCH_MS: z.coerce.number().int().min(200).default(3000),
  /** Probes in flight at once per worker process. */
  BERTH_PROBE_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(50),
  /** More state changes than this within 10 minutes count as flapping: recorded, not notified. */
  BERTH_FLAP_LIMIT: z.coerce.number().int().min(2).default(6),
  /** SMTP for notifications; when BERTH_SMTP_HOST is unset, mail is recorded instead of sent. */
  BERTH_SMTP_HOST: z.string().min(1).optional(),
  BERTH_SMTP_PORT: z.coerce.number().int().min(1).max(65535).default(587),
  BERTH_SMTP_USER: z.string().optional(),
  BERTH_SMTP_PASSWORD: z.string().optional(),
  /** true: TLS from the start (port 465); false: STARTTLS when the server offers it. */
  BERTH_SMTP_SECURE: bool.default(false),
  BERTH_SMTP_FROM: z.string().min(3).default('Berth <berth@localhost>'),
  BERTH_NOTIFY_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(10),
  BERTH_NOTIFY_BACKOFF_MS: z.coerce.number().int().min(10).default(5000),
  BERTH_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /**
   * Networks webhooks may reach although they are not public (CIDRs, comma-separated).
   * Loopback, private, link-local and reserved addresses are refused otherwise.
   */
  BERTH_WEBHOOK_ALLOWED_NETWORKS: z
    .string()
    .default('')
    .superRefine((v, ctx) => {
      try {
        parseNetworks(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    }),
  /** How long a started site may take to answer HTTP before the step fails. */
  BERTH_HTTP_READY_TIMEOUT_MS: z.coerce.number().int().min(1000).default(120_000),
  /** Locks held by a worker (per site, per job) expire this long after it dies. */
  BERTH_LOCK_TTL_MS: z.coerce.number().int().min(1000).default(30_000),
  BERTH_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(15_000),
  /** The reconciler compares every site with Docker this often (and on Docker events). */
  BERTH_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(500).default(30_000),
  /** Objects labelled as Berth's that no site claims are removed after this long. */
  BERTH_ORPHAN_GRACE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(10 * 60_000),
  /**
   * A configuration change that alters every site's container (image, PID limit, publish
   * address, ...) replaces this many sites' containers at a time, and stops at the first failure.
   */
  BERTH_ROLLOUT_BATCH: z.coerce.number().int().min(1).max(1000).default(2),
  /** Process limit of every site and database container. */
  BERTH_PIDS_LIMIT: z.coerce.number().int().min(16).max(100_000).default(512),
  /** Limits of each tenant's database server. */
  BERTH_DB_MEMORY_MB: z.coerce.number().int().min(128).default(1024),
  BERTH_DB_CPUS: z.coerce.number().min(0.1).default(1),
  /**
   * How long the API may show a container's inspected state; any Engine event about the
   * container ends it at once (0: inspect on every read).
   */
  BERTH_CONTAINER_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(30_000),
  /**
   * How long an API process remembers an authenticated key (0: ask PostgreSQL every time).
   * Revocations reach every process at once through Redis; this bounds the delay otherwise.
   */
  BERTH_AUTH_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
  /** Requests per API key per minute, sustained; 0 turns the limit off. */
  BERTH_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(1200),
  /** Requests a key may make at once before the sustained rate applies; default: a minute's worth. */
  BERTH_RATE_LIMIT_BURST: z.coerce.number().int().min(1).optional(),
  /**
   * Prometheus scrapes GET /metrics with `Authorization: Bearer <this token>`. Unset: /metrics
   * answers loopback callers only (a Prometheus on the same host), and 403 to anyone else.
   */
  BERTH_METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  /** The worker role has no HTTP server; with this set it serves GET /metrics (only) on this port. */
  BERTH_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** GraphQL: deepest selection and largest estimated cost (fields × list sizes) accepted. */
  BERTH_GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(2).max(100).default(8),
  BERTH_GRAPHQL_MAX_COST: z.coerce.number().int().min(10).default(20_000),
  BERTH_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  /** The edge in front of every site: `caddy` (driven through its admin API) or `none` (sites only on their host ports). */
  BERTH_EDGE: z.enum(['caddy', 'none']).default('caddy'),
  BERTH_EDGE_ADMIN_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:2019'),
  /**
   * What Caddy's admin API listens on, as Caddy sees it (every configuration Berth loads keeps
   * it); by default the host and port of BERTH_EDGE_ADMIN_URL. An edge in a container that
   * Berth reaches from outside listens on `:2019`, say.
   */
  BERTH_EDGE_ADMIN_LISTEN: z
    .string()
    .regex(/^[0-9a-zA-Z.[\]:-]*:\d{1,5}$/, 'host:port or :port')
    .optional(),
  /** Where Berth reaches the edge's HTTP and HTTPS ports (its own checks and probes). */
  BERTH_EDGE_ADDRESS: z.ipv4().default('127.0.0.1'),
  /** Ports the edge answers on: HTTP (redirects to HTTPS when TLS is on) and HTTPS. */
  BERTH_EDGE_HTTP_PORT: z.coerce.number().int().min(1).max(65535).default(80),
  BERTH_EDGE_HTTPS_PORT: z.coerce.number().int().min(1).max(65535).default(443),
  /** Every site answers on `<site>-<tenant>.<BERTH_BASE_DOMAIN>`. */
  BERTH_BASE_DOMAIN: z
    .string()
    .toLowerCase()
    .regex(
      /^(?=.{1,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/,
      'a domain name such as sites.example.com',
    )
    .default('berth.localhost'),
  /** `internal`: Caddy's own CA (offline); `acme`: certificates on demand from an ACME CA; `off`: HTTP only. */
  BERTH_TLS: z.enum(['internal', 'acme', 'off']).default('internal'),
  BERTH_ACME_EMAIL: z.email().optional(),
  /**
   * Where the edge asks whether it may get a certificate for a hostname (Berth's
   * /v1/edge/ask); by default this process's own API address.
   */
  BERTH_EDGE_ASK_URL: z.url({ protocol: /^https?$/ }).optional(),
  /**
   * `dns`: a custom domain is routed only once the TXT record _berth-challenge.<hostname>
   * holds the token Berth gave for it; `none`: at once.
   */
  BERTH_DOMAIN_VERIFICATION: z.enum(['none', 'dns']).default('none'),
  /** DNS servers for those checks (`ip` or `ip:port`, comma-separated); the system's when unset. */
  BERTH_DNS_SERVERS: z
    .string()
    .regex(/^\s*[0-9a-f.:[\]]+(\s*,\s*[0-9a-f.:[\]]+)*\s*$/i, 'addresses such as 9.9.9.9 or 127.0.0.1:5353, comma-separated')
    .optional(),
  /** Pending domains are checked this often (and on request). */
  BERTH_DOMAIN_CHECK_MS: z.coerce.number().int().min(500).default(30_000),
  /** The edge's routes are compared with the database this often (and after every job). */
  BERTH_EDGE_SYNC_MS: z.coerce.number().int().min(200).default(5000),
  /**
   * Where backups go: a restic repository (a local directory, or `sftp:`, `s3:`, `rest:` ...).
   * One repository per installation; snapshots are tagged with their tenant and site.
   */
  BERTH_BACKUP_REPOSITORY: z.string().min(1).default('/var/lib/berth/backups'),
  /** The repository's password; by default derived from BERTH_ENCRYPTION_KEY (so never stored). */
  BERTH_BACKUP_PASSWORD: z.string().min(16, 'at least 16 characters').optional(),
  /** Where a backup stages a site's dump and files before restic reads them (removed after each). */
  BERTH_BACKUP_STAGING_DIR: z.string().startsWith('/').default('/var/tmp/berth-backup'),
  /** The scheduler looks for sites whose backup is due this often (a BullMQ repeatable job). */
  BERTH_BACKUP_SCHEDULER_MS: z.coerce.number().int().min(500).default(60_000),
  /** The most a tenant may ask to keep, and the shortest interval between scheduled backups. */
  /** Days a deleted site's backups are kept (it can be brought back from them meanwhile); 0: forgotten with the site. */
  BERTH_BACKUP_KEEP_DELETED_DAYS: z.coerce.number().int().min(0).max(3650).default(30),
  BERTH_BACKUP_MAX_KEEP_DAILY: z.coerce.number().int().min(1).default(31),
  BERTH_BACKUP_MAX_KEEP_WEEKLY: z.coerce.number().int().min(0).default(52),
  BERTH_BACKUP_MIN_INTERVAL_HOURS: z.coerce.number().int().min(1).default(1),
  /** Upper bound for a step that moves a site's whole content (a backup, a restore, a clone's copy). */
  /** A download whose client reads nothing for this long is cut: restic's lock on the repository is not held for a stalled client. */
  BERTH_BACKUP_DOWNLOAD_IDLE_MS: z.coerce.number().int().min(1000).default(300_000),
  BERTH_BACKUP_TIMEOUT_MS: z.coerce.number().int().min(10_000).default(3_600_000),
  /** The restic program. */
  BERTH_RESTIC: z.string().min(1).default('restic'),
  BERTH_LOG_LEVEL: z.enum(['error', 'warn', 'log', 'debug', 'verbose']).default('log'),
  BERTH_RUN_MIGRATIONS: bool.default(true),
});

export type BerthConfig = z.infer<typeof schema> & {
  /** Keys of the config whose values must never be logged. */
  readonly secretKeys: readonly string[];
};

export class ConfigError extends Error {}

/** Reads and validates the environment once; throws naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): BerthConfig {
  const input = Object.fromEntries(Object.keys(schema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (i) => `  ${i.path.join('.')}: ${i.message}${input[String(i.path[0])] === undefined ? ' (not set)' : ''}`,
    );
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  if (parsed.data.NODE_ENV === 'production' && !parsed.data.BERTH_ENCRYPTION_KEY) {
    throw new ConfigError(
      'Invalid configuration:\n  BERTH_ENCRYPTION_KEY: required in production (32 random bytes in base64, e.g. `openssl rand -base64 32`)',
    );
  }
  if (
    parsed.data.BERTH_EDGE === 'caddy' &&
    parsed.data.BERTH_TLS === 'acme' &&
    parsed.data.BERTH_ROLE === 'worker' &&
    !parsed.data.BERTH_EDGE_ASK_URL &&
    !parsed.data.PORT
  ) {
    throw new ConfigError(
      'Invalid configuration:\n  BERTH_EDGE_ASK_URL: required for BERTH_TLS=acme in a worker without PORT: the edge must ask Berth before it requests a certificate',
    );
  }
  if (parsed.data.BERTH_ENGINE === 'swarm' && !parsed.data.BERTH_SWARM_NODE_ENGINE) {
    throw new ConfigError(
      "Invalid configuration:\n  BERTH_SWARM_NODE_ENGINE: required with BERTH_ENGINE=swarm: how Berth reaches a node's own engine, e.g. tcp://{address}:2376",
    );
  }
  if (parsed.data.DOCKER_TLS_VERIFY) {
    for (const [name, url] of [
      ['DOCKER_HOST', parsed.data.DOCKER_HOST],
      ['BERTH_SWARM_NODE_ENGINE', parsed.data.BERTH_SWARM_NODE_ENGINE],
    ] as const) {
      if (url?.startsWith('http:')) {
        throw new ConfigError(
          `Invalid configuration:\n  ${name}: ${url} says plain HTTP, but DOCKER_TLS_VERIFY asks for TLS: use tcp:// or https://`,
        );
      }
    }
    try {
      readEngineTls(certPath(parsed.data.DOCKER_CERT_PATH));
    } catch (e) {
      throw new ConfigError(
        `Invalid configuration:\n  DOCKER_CERT_PATH: DOCKER_TLS_VERIFY needs ca.pem, cert.pem and key.pem: ${(e as Error).message}`,
      );
    }
  }
  if (parsed.data.BERTH_ENGINE === 'swarm' && parsed.data.BERTH_EDGE !== 'caddy') {
    throw new ConfigError(
      'Invalid configuration:\n  BERTH_EDGE: must be caddy with BERTH_ENGINE=swarm: sites on a Swarm publish no port and are reached only through the edge',
    );
  }
  const poolBits = parseIpv4Cidr(parsed.data.BERTH_SUBNET_POOL).bits;
  if (parsed.data.BERTH_SUBNET_PREFIX < poolBits) {
    throw new ConfigError(
      `Invalid configuration:\n  BERTH_SUBNET_PREFIX: /${parsed.data.BERTH_SUBNET_PREFIX} subnets do not fit in BERTH_SUBNET_POOL ${parsed.data.BERTH_SUBNET_POOL}: at least /${poolBits}`,
    );
  }
  return {
    ...parsed.data,
    secretKeys: ['DATABASE_URL', 'REDIS_URL', 'BERTH_ADMIN_KEY', 'BERTH_ENCRYPTION_KEY', 'BERTH_SMTP_PASSWORD', 'BERTH_BACKUP_PASSWORD'],
  };
}

export const BERTH_CONFIG = Symbol('BERTH_CONFIG');
