#!/usr/bin/env node
import { Command, Option } from 'commander';
import Table from 'cli-table3';
import { BerthApiError, BerthClient, type Job, type Schemas } from '../client/berth-client';
import { followJob, JobError } from './follow';

/**
 * `berth`: Berth's command line, for operators and onboarding scripts. Tables for people,
 * `--json` for scripts; BERTH_URL and BERTH_API_KEY say where and who; a failure exits 1
 * with Berth's error code (or JOB_FAILED / JOB_CANCELLED for a job that did not succeed).
 * Arguments: commander; tables: cli-table3; progress: cli-progress.
 */
const program = new Command('berth')
  .description("Berth's command line: tenants, keys, sites, domains, backups, jobs and events")
  .addOption(new Option('--url <url>', "Berth's address").env('BERTH_URL').default('http://127.0.0.1:3000'))
  .addOption(new Option('--key <key>', 'API key').env('BERTH_API_KEY'))
  .option('--json', 'print JSON (for scripts) instead of tables')
  .showHelpAfterError();

interface Globals {
  url: string;
  key?: string;
  json?: boolean;
}
const globals = () => program.opts<Globals>();
/** One client per run, made once the options are parsed. */
let made: BerthClient | undefined;
const client = () =>
  (made ??= new BerthClient({
    url: globals().url,
    apiKey: globals().key,
    onRetry: ({ status, waitMs }) => process.stderr.write(`berth: ${status}, trying again in ${Math.ceil(waitMs / 1000)} s\n`),
  }));
const id = (value: string) => ({ params: { path: { id: value } } });

/** Prints rows as a table (the given columns) or, with --json, the value as it came. */
function print(
  value: unknown,
  columns: string[],
  rows: Record<string, unknown>[] = Array.isArray(value) ? value : [value as Record<string, unknown>],
): void {
  if (globals().json) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  const table = new Table({ head: columns, style: { head: [], border: [] } });
  for (const row of rows)
    table.push(columns.map((c) => cell(c.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | null)?.[k], row))));
  process.stdout.write(`${table.toString()}\n`);
}
const cell = (v: unknown): string =>
  v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v);

/** Follows a job to its end (see follow.ts), on this run's client and stderr. */
const follow = (job: Job, wait: boolean): Promise<Job> =>
  followJob(client(), job, { wait, json: !!globals().json, stream: process.stderr });

const JOB = ['id', 'kind', 'status', 'progress', 'error'];
const SITE = ['id', 'name', 'status', 'health', 'publicUrl'];
const wait = new Option('--no-wait', 'answer with the job at once instead of following it');

// --- tenants ---------------------------------------------------------------------------
const tenants = program.command('tenants').description('tenants (admin key)');
tenants
  .command('create')
  .requiredOption('--slug <slug>', 'short name, unique, in hostnames')
  .requiredOption('--name <name>', 'display name')
  .requiredOption('--email <email>', 'contact email (told when a site goes down)')
  .option('--max-sites <n>', 'how many sites it may have', Number)
  .action(async (o: { slug: string; name: string; email: string; maxSites?: number }) => {
    const body = { slug: o.slug, name: o.name, contactEmail: o.email, ...(o.maxSites ? { maxSites: o.maxSites } : {}) };
    print(await client().call(client().api.POST('/v1/tenants', { body })), ['id', 'slug', 'name', 'status', 'maxSites']);
  });
tenants.command('list').action(async () => {
  print(await client().call(client().api.GET('/v1/tenants')), ['id', 'slug', 'name', 'status', 'maxSites']);
});

// --- keys --------------------------------------------------------------------------------
const keys = program.command('keys').description("a tenant's API keys");
keys
  .command('create <tenantId>')
  .addOption(new Option('--role <role>', 'what the key may do').choices(['TENANT', 'TENANT_READONLY']).default('TENANT'))
  .option('--name <name>', 'a name to recognise it by')
  .action(async (tenantId: string, o: { role: 'TENANT' | 'TENANT_READONLY'; name?: string }) => {
    const body = { role: o.role, ...(o.name ? { name: o.name } : {}) };
    print(await client().call(client().api.POST('/v1/tenants/{id}/api-keys', { ...id(tenantId), body })), ['id', 'role', 'key']);
  });
keys.command('revoke <keyId>').action(async (keyId: string) => {
  print(await client().call(client().api.DELETE('/v1/api-keys/{id}', id(keyId))), ['id', 'role', 'revokedAt']);
});

// --- sites -------------------------------------------------------------------------------
const sites = program.command('sites').description('WordPress sites');
sites
  .command('create <name>')
  .option('--tenant <tenantId>', 'the tenant (needed with an admin key)')
  .option('--title <title>', "the site's title")
  .option('--admin-user <login>', "WordPress administrator's login")
  .option('--admin-email <email>', "WordPress administrator's email")
  .option('--admin-password <password>', "administrator's password (else a set-password link is emailed)")
  .addOption(wait)
  .action(async (name: string, o: SiteOptions & { wait: boolean }) => {
    const created = await createSite(name, o);
    if (!o.wait) return print(created, ['site.id', 'site.name', 'job.id', 'job.status'], [created]);
    await follow(created.job, true);
    print(await getSite(created.site.id), SITE);
  });
sites
  .command('list')
  .option('--tenant <tenantId>', 'only this tenant (admin key)')
  .action(async (o: { tenant?: string }) => {
    const query = o.tenant ? { tenantId: o.tenant } : {};
    print(await client().call(client().api.GET('/v1/sites', { params: { query } })), SITE);
  });
sites.command('show <siteId>').action(async (siteId: string) => {
  print(await getSite(siteId), [...SITE, 'url', 'restartCount', 'lastError']);
});
for (const action of ['start', 'stop', 'restart', 'delete'] as const) {
  sites
    .command(`${action} <siteId>`)
    .addOption(wait)
    .action(async (siteId: string, o: { wait: boolean }) => {
      const api = client().api;
      const answer =
        action === 'delete'
          ? api.DELETE('/v1/sites/{id}', id(siteId))
          : api.POST(`/v1/sites/{id}/${action}` as '/v1/sites/{id}/start', id(siteId));
      const { job } = await client().call(answer);
      print(await follow(job, o.wait), JOB);
    });
}
sites
  .command('logs <siteId>')
  .option('-f, --follow', 'keep printing new lines')
  .option('--tail <n>', 'lines from the end', Number, 100)
  .action(async (siteId: string, o: { follow?: boolean; tail: number }) => {
    const stream = await client().call(
      client().api.GET('/v1/sites/{id}/logs', {
        params: { path: { id: siteId }, query: { tail: o.tail, follow: !!o.follow } },
        parseAs: 'stream',
      }),
    );
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
  });

// --- domains -----------------------------------------------------------------------------
const domains = program.command('domains').description("a site's own hostnames");
domains
  .command('add <siteId> <hostname>')
  .option('--primary', 'make it the address the site answers at (others redirect to it)')
  .option('--www', 'also www.<hostname>, redirecting to the primary')
  .action(async (siteId: string, hostname: string, o: { primary?: boolean; www?: boolean }) => {
    const body = { hostname, primary: !!o.primary, www: !!o.www };
    print(await client().call(client().api.POST('/v1/sites/{id}/domains', { ...id(siteId), body })), [
      'hostname',
      'primary',
      'status',
      'verification',
    ]);
  });
domains.command('list <siteId>').action(async (siteId: string) => {
  print(await client().call(client().api.GET('/v1/sites/{id}/domains', id(siteId))), ['hostname', 'primary', 'status']);
});
domains.command('remove <siteId> <hostname>').action(async (siteId: string, hostname: string) => {
  const params = { path: { id: siteId, hostname } };
  print(await client().call(client().api.DELETE('/v1/sites/{id}/domains/{hostname}', { params })), ['hostname', 'primary', 'status']);
});

// --- backups -----------------------------------------------------------------------------
const BACKUP = ['id', 'kind', 'status', 'sizeBytes', 'createdAt'];
const backups = program.command('backups').description("a site's backups");
backups
  .command('create <siteId>')
  .addOption(wait)
  .action(async (siteId: string, o: { wait: boolean }) => {
    const { backup, job } = await client().call(client().api.POST('/v1/sites/{id}/backups', id(siteId)));
    await follow(job, o.wait);
    print(o.wait ? await client().call(client().api.GET('/v1/backups/{id}', id(backup.id))) : backup, BACKUP);
  });
backups.command('list <siteId>').action(async (siteId: string) => {
  print(await client().call(client().api.GET('/v1/sites/{id}/backups', id(siteId))), BACKUP);
});
backups
  .command('restore <siteId> <backupId>')
  .addOption(wait)
  .action(async (siteId: string, backupId: string, o: { wait: boolean }) => {
    const { job } = await client().call(client().api.POST('/v1/sites/{id}/restore', { ...id(siteId), body: { backupId } }));
    print(await follow(job, o.wait), JOB);
  });

// --- jobs and events ---------------------------------------------------------------------
const jobs = program.command('jobs').description('jobs (what Berth does in the background)');
jobs.command('show <jobId>').action(async (jobId: string) => {
  const job = await client().getJob(jobId);
  if (globals().json) return print(job, JOB);
  print(job, JOB);
  print(job.steps, ['name', 'status', 'startedAt', 'finishedAt', 'error']);
});
jobs.command('cancel <jobId>').action(async (jobId: string) => {
  print(await client().call(client().api.POST('/v1/jobs/{id}/cancel', id(jobId))), JOB);
});
program
  .command('events')
  .description("the caller's events, newest first; -f follows new ones as they happen")
  .option('-f, --follow', 'keep printing events as they happen')
  .option('--site <siteId>', "only this site's")
  .action(async (o: { follow?: boolean; site?: string }) => {
    if (!o.follow) {
      const query = o.site ? { siteId: o.site } : {};
      return print(await client().call(client().api.GET('/v1/events', { params: { query } })), ['createdAt', 'type', 'message']);
    }
    const onOpen = () =>
      process.stderr.write(`berth: following the events of ${o.site ? `site ${o.site}` : 'the tenant'} (Ctrl-C stops)\n`);
    for await (const e of client().events({ siteId: o.site, onOpen }))
      process.stdout.write(globals().json ? `${JSON.stringify(e)}\n` : `${e.createdAt} ${e.type} ${e.message}\n`);
  });

// --- onboarding --------------------------------------------------------------------------
program
  .command('onboard')
  .description('one step for a new customer (admin key): tenant, API key, installed site on its domain; prints the login URL')
  .requiredOption('--slug <slug>', "the tenant's short name")
  .requiredOption('--name <name>', "the customer's name")
  .requiredOption('--email <email>', "the customer's email (WordPress administrator and contact)")
  .requiredOption('--domain <hostname>', "the site's domain")
  .option('--site <name>', "the site's name", 'www')
  .option('--title <title>', "the site's title")
  .option('--admin-password <password>', "the administrator's password (else a set-password link is emailed)")
  .action(
    async (o: { slug: string; name: string; email: string; domain: string; site: string; title?: string; adminPassword?: string }) => {
      const api = client().api;
      const tenant = await client().call(api.POST('/v1/tenants', { body: { slug: o.slug, name: o.name, contactEmail: o.email } }));
      const key = await client().call(api.POST('/v1/tenants/{id}/api-keys', { ...id(tenant.id), body: { name: 'onboarding' } }));
      const created = await createSite(o.site, {
        tenant: tenant.id,
        title: o.title ?? o.name,
        adminEmail: o.email,
        adminPassword: o.adminPassword,
      });
      await follow(created.job, true);
      await client().call(api.POST('/v1/sites/{id}/domains', { ...id(created.site.id), body: { hostname: o.domain, primary: true } }));
      // A new primary domain moves WordPress to it in a repair job, named by the site.repair event.
      const events = await client().call(
        api.GET('/v1/sites/{id}/events', { params: { path: { id: created.site.id }, query: { limit: 20 } } }),
      );
      const repair = events.find((e) => e.type === 'site.repair')?.data as { jobId?: string } | undefined;
      if (repair?.jobId) await follow(await client().getJob(repair.jobId), true);
      const site = await getSite(created.site.id);
      const login = site.publicUrl
        ? new URL('wp-login.php', site.publicUrl.endsWith('/') ? site.publicUrl : `${site.publicUrl}/`).toString()
        : null;
      const result = {
        tenant: { id: tenant.id, slug: tenant.slug },
        apiKey: key.key,
        site: { id: site.id, name: site.name, status: site.status, publicUrl: site.publicUrl },
        loginUrl: login,
      };
      if (globals().json) return print(result, []);
      print(result, ['tenant.slug', 'site.name', 'site.status', 'site.publicUrl'], [result]);
      process.stdout.write(`API key (shown once): ${key.key}\nLog in at: ${login ?? '(no edge: the site has no public URL)'}\n`);
    },
  );

interface SiteOptions {
  tenant?: string;
  title?: string;
  adminUser?: string;
  adminEmail?: string;
  adminPassword?: string;
}

function createSite(name: string, o: SiteOptions) {
  const wordpress = {
    ...(o.title ? { title: o.title } : {}),
    ...(o.adminUser ? { adminUser: o.adminUser } : {}),
    ...(o.adminEmail ? { adminEmail: o.adminEmail } : {}),
    ...(o.adminPassword ? { adminPassword: o.adminPassword } : {}),
  };
  const body: Schemas['CreateSiteInput'] = {
    name,
    ...(o.tenant ? { tenantId: o.tenant } : {}),
    ...(Object.keys(wordpress).length ? { wordpress } : {}),
  };
  return client().createSite(body);
}

const getSite = (siteId: string) => client().call(client().api.GET('/v1/sites/{id}', id(siteId)));

program.parseAsync().catch((e: unknown) => {
  const code = e instanceof BerthApiError || e instanceof JobError ? e.code : 'CLIENT_ERROR';
  const message = e instanceof Error ? e.message.replace(`${code}: `, '') : String(e);
  if (globals().json)
    process.stderr.write(`${JSON.stringify({ error: { code, message, ...(e instanceof BerthApiError ? { status: e.status } : {}) } })}\n`);
  else process.stderr.write(`berth: ${code}: ${message}\n`);
  process.exitCode = 1;
});
