import { names } from '../src/sites/site-plan';

/** The environment the end-to-end suites run Berth with (scripts/test.sh sets the URLs). */
export const TEST_ADMIN_KEY = 'berth_e2e-admin-key-0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * BERTH_TEST_SLOT (0-9, default 0) keeps concurrent runs of the suite on one machine apart:
 * each slot has its own database, Redis database, instance label, subnets and host ports.
 */
export const TEST_SLOT = Number(process.env.BERTH_TEST_SLOT ?? '0');
export const TEST_INSTANCE = `e2e${TEST_SLOT}`;

/** The Docker names Berth gives this run's objects (they carry the instance). */
export const testNames = {
  network: (tenant: string) => names.network(TEST_INSTANCE, tenant),
  dbContainer: (tenant: string) => names.dbContainer(TEST_INSTANCE, tenant),
  dbVolume: (tenant: string) => names.dbVolume(TEST_INSTANCE, tenant),
  wpContainer: (tenant: string, site: string) => names.wpContainer(TEST_INSTANCE, tenant, site),
  siteVolume: (tenant: string, site: string) => names.siteVolume(TEST_INSTANCE, tenant, site),
};

/** The edge this slot's Berth drives (scripts/test.sh starts it at BERTH_EDGE_ADMIN_URL). */
export const EDGE_HTTP_PORT = 18080 + TEST_SLOT;
export const EDGE_HTTPS_PORT = 18443 + TEST_SLOT;
export const BASE_DOMAIN = `e2e${TEST_SLOT}.berth.localhost`;

export const BACKUP_REPOSITORY = `/var/tmp/berth-e2e${TEST_SLOT}/backups`;
export const BACKUP_PASSWORD = 'berth-e2e-backup-password';

export function testRedisUrl(): string {
  const u = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  u.pathname = `/${3 + TEST_SLOT}`;
  return u.toString();
}

export function testEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'test',
    PORT: '0',
    REDIS_URL: testRedisUrl(),
    BERTH_INSTANCE: TEST_INSTANCE,
    BERTH_ADMIN_KEY: TEST_ADMIN_KEY,
    BERTH_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    BERTH_WORDPRESS_IMAGE: 'berth/stub-wordpress:latest',
    BERTH_DB_IMAGE: 'berth/mariadb:10.11',
    BERTH_SUBNET_POOL: `10.${80 + TEST_SLOT}.0.0/16`,
    BERTH_PORT_RANGE: `${21000 + TEST_SLOT * 1000}-${21999 + TEST_SLOT * 1000}`,
    BERTH_LOG_LEVEL: process.env.BERTH_TEST_LOG_LEVEL ?? 'warn',
    BERTH_STEP_TIMEOUT_MS: '90000',
    BERTH_JOB_BACKOFF_MS: '500',
    // The test webhook receivers listen on loopback, which Berth refuses by default.
    BERTH_WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128',
    // The edge of this slot (scripts/test.sh starts it), with its own ports and names.
    BERTH_EDGE_HTTP_PORT: String(EDGE_HTTP_PORT),
    BERTH_EDGE_HTTPS_PORT: String(EDGE_HTTPS_PORT),
    BERTH_BASE_DOMAIN: BASE_DOMAIN,
    BERTH_TLS: 'internal',
    // One restic repository per slot, with a password the suites know (to read snapshots themselves).
    BERTH_BACKUP_REPOSITORY: BACKUP_REPOSITORY,
    BERTH_BACKUP_PASSWORD: BACKUP_PASSWORD,
    BERTH_BACKUP_STAGING_DIR: `/var/tmp/berth-e2e${TEST_SLOT}/staging`,
    BERTH_BACKUP_TIMEOUT_MS: '120000',
    // The backup scheduler's runs stay out of the suites that do not test it (test/backups sets
    // its own): its first run puts every site left in the suite database on the schedule.
    BERTH_BACKUP_SCHEDULER_MS: '3600000',
    ...overrides,
  };
}
