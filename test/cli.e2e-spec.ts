import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { edgeFetch, edgeRoot } from './edge-client';
import { auth, createTenant, startHarness, uniqueSlug, type Harness } from './harness';
import { eventually } from './receivers';
import { removeSuiteObjects } from './suite-helpers';

const root = join(__dirname, '..');
const METRICS_TOKEN = 'berth-e2e-cli-metrics-token-0123';

describe('the berth CLI against a live Berth', () => {
  let h: Harness;
  /** Runs bin/berth as a script would (no terminal), with BERTH_URL and BERTH_API_KEY. */
  const berth = (key: string, ...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(root, 'bin/berth'), ...args],
        { env: { ...process.env, BERTH_URL: h.berth.url, BERTH_API_KEY: key }, timeout: 170_000 },
        (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  /** How many GET /v1/jobs/{id} Berth answered so far (its own metrics). */
  const jobReads = async () => {
    const text = (await h.http.get('/metrics').set(auth(METRICS_TOKEN))).text;
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('berth_http_request_duration_seconds_count{') && l.includes('route="/v1/jobs/:id"') && l.includes('method="GET"'),
      );
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  beforeAll(async () => {
    h = await startHarness({ BERTH_METRICS_TOKEN: METRICS_TOKEN });
  });
  afterAll(async () => {
    await h.stop();
    await removeSuiteObjects();
  });

  it('onboards a customer in one command: tenant, key, an installed site on its domain, and the login URL', async () => {
    const slug = uniqueSlug('cli');
    const domain = `shop-${randomBytes(3).toString('hex')}.example.com`;
    const run = await berth(
      h.admin,
      '--json',
      'onboard',
      '--slug',
      slug,
      '--name',
      'Cli Customer',
      '--email',
      `owner@${slug}.example`,
      '--domain',
      domain,
      '--admin-password',
      'correct-horse-battery',
    );
    expect([run.code, run.stderr]).toEqual([0, '']);
    const out = JSON.parse(run.stdout) as {
      tenant: { id: string };
      apiKey: string;
      site: { id: string; status: string };
      loginUrl: string;
    };
    expect(out.site.status).toBe('RUNNING');
    expect(out.loginUrl).toMatch(new RegExp(`^https://${domain.replace(/\./g, '\\.')}(:\\d+)?/wp-login\\.php$`));
    // The key works and is the tenant's; the domain is the site's primary; the edge serves the login URL.
    const me = await h.http.get(`/v1/sites/${out.site.id}/domains`).set(auth(out.apiKey));
    expect(me.body).toEqual([expect.objectContaining({ hostname: domain, primary: true, status: 'ACTIVE' })]);
    const page = await edgeFetch(await edgeRoot(), out.loginUrl);
    expect(page.status).toBeLessThan(500);
    // WordPress was installed for the owner at its domain.
    const site = await h.http.get(`/v1/sites/${out.site.id}`).set(auth(out.apiKey));
    expect(site.body.wordpress).toEqual(expect.objectContaining({ adminEmail: `owner@${slug}.example`, installedAt: expect.any(String) }));
    expect(out.loginUrl.startsWith(site.body.publicUrl.replace(/\/$/, ''))).toBe(true);
  });

  it('creates a site following its job over the subscription (step lines, not polling), prints tables, and manages the site', async () => {
    const slug = uniqueSlug('clt');
    const tenant = await berth(
      h.admin,
      '--json',
      'tenants',
      'create',
      '--slug',
      slug,
      '--name',
      'Tables',
      '--email',
      `ops@${slug}.example`,
    );
    expect(tenant.code).toBe(0);
    const tenantId = JSON.parse(tenant.stdout).id as string;
    const issued = await berth(h.admin, '--json', 'keys', 'create', tenantId, '--name', 'script');
    const key = JSON.parse(issued.stdout).key as string;

    const readsBefore = await jobReads();
    const created = await berth(key, 'sites', 'create', 'blog', '--title', 'A blog');
    expect(created.code).toBe(0);
    // People get a table; the job's steps came as they happened, one line each (no terminal here).
    expect(created.stdout).toMatch(/│ id\s+│ name\s+│ status\s+│ health\s+│ publicUrl/);
    expect(created.stdout).toMatch(/│ blog\s+│ RUNNING/);
    const steps = created.stderr.split('\n').filter((l) => l.startsWith('PROVISION '));
    expect(steps.length).toBeGreaterThanOrEqual(4);
    expect(created.stderr).toMatch(/PROVISION \d+% wait for database server \(running\)/);
    // Followed, not polled: the job was read once when following began (and at most once more after a quiet spell).
    // (The metric does count those reads: the positive control.)
    const reads = (await jobReads()) - readsBefore;
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(2);

    const list = await berth(key, '--json', 'sites', 'list');
    const siteId = (JSON.parse(list.stdout) as { id: string; name: string }[]).find((s) => s.name === 'blog')!.id;
    const stopped = await berth(key, '--json', 'sites', 'stop', siteId);
    expect([stopped.code, JSON.parse(stopped.stdout)]).toEqual([0, expect.objectContaining({ kind: 'STOP', status: 'SUCCEEDED' })]);
    const shown = await berth(key, '--json', 'sites', 'show', siteId);
    expect(JSON.parse(shown.stdout).status).toBe('STOPPED');
    const queued = await berth(key, '--json', 'sites', 'start', siteId, '--no-wait');
    const job = JSON.parse(queued.stdout) as { id: string; status: string };
    expect(['QUEUED', 'RUNNING']).toContain(job.status);
    const jobShown = await berth(key, 'jobs', 'show', job.id);
    expect([jobShown.code, jobShown.stdout]).toEqual([0, expect.stringContaining(job.id)]);
    const events = await berth(key, '--json', 'events', '--site', siteId);
    expect((JSON.parse(events.stdout) as { type: string }[]).map((e) => e.type)).toEqual(expect.arrayContaining(['site.created']));
  });

  it('exits 1 with the error code: Berth refusing, a bad key, a tenant key on an admin command', async () => {
    const missing = await berth(h.admin, 'sites', 'show', randomUUID());
    expect([missing.code, missing.stdout]).toEqual([1, '']);
    expect(missing.stderr).toMatch(/^berth: SITE_NOT_FOUND: Site [0-9a-f-]+ was not found\n$/);
    const asJson = await berth(h.admin, '--json', 'sites', 'show', randomUUID());
    expect([asJson.code, JSON.parse(asJson.stderr).error]).toEqual([1, expect.objectContaining({ code: 'SITE_NOT_FOUND', status: 404 })]);
    const badKey = await berth('berth_not-a-key-0123456789abcdefghijklmnopq', 'sites', 'list');
    expect([badKey.code, badKey.stderr]).toEqual([1, expect.stringMatching(/^berth: UNAUTHENTICATED: /)]);
    const t = await berth(h.admin, '--json', 'tenants', 'create', '--slug', uniqueSlug('clx'), '--name', 'X', '--email', 'x@x.example');
    const key = JSON.parse((await berth(h.admin, '--json', 'keys', 'create', JSON.parse(t.stdout).id)).stdout).key as string;
    const forbidden = await berth(key, 'tenants', 'create', '--slug', uniqueSlug('cly'), '--name', 'Y', '--email', 'y@y.example');
    expect([forbidden.code, forbidden.stderr]).toEqual([1, expect.stringMatching(/^berth: FORBIDDEN: /)]);
    // The positive control: the same command with the admin key succeeds.
    const allowed = await berth(h.admin, 'tenants', 'create', '--slug', uniqueSlug('clz'), '--name', 'Z', '--email', 'z@z.example');
    expect(allowed.code).toBe(0);
  });

  it('follows events as they happen, backs a site up and restores it, reads its log, removes a domain, revokes a key', async () => {
    const t = await createTenant(h);
    const created = await berth(t.key, '--json', 'sites', 'create', 'shop');
    expect(created.code).toBe(0);
    const site = JSON.parse(created.stdout) as { id: string; status: string };
    expect(site.status).toBe('RUNNING');

    // events -f runs until stopped; once it says the stream is open, nothing that follows is missed.
    const follower = spawn(process.execPath, [join(root, 'bin/berth'), '--json', 'events', '-f', '--site', site.id], {
      env: { ...process.env, BERTH_URL: h.berth.url, BERTH_API_KEY: t.key },
    });
    let followed = '';
    let said = '';
    follower.stdout.on('data', (c: Buffer) => (followed += c.toString()));
    follower.stderr.on('data', (c: Buffer) => (said += c.toString()));
    try {
      await eventually(() => (said.includes('berth: following the events of site') ? true : undefined), 'the event stream to open', 20_000);
      const backup = await berth(t.key, '--json', 'backups', 'create', site.id);
      expect([backup.code, backup.stderr]).toEqual([0, '']);
      const taken = JSON.parse(backup.stdout) as { id: string; status: string };
      expect(taken.status).toBe('SUCCEEDED');
      const lines = await eventually(
        () => {
          const events = followed
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { type: string; siteId: string });
          return events.some((e) => e.type === 'backup.succeeded') ? events : undefined;
        },
        'backup.succeeded on the followed stream',
        30_000,
      );
      expect(lines.every((e) => e.siteId === site.id)).toBe(true);

      const listed = await berth(t.key, '--json', 'backups', 'list', site.id);
      expect((JSON.parse(listed.stdout) as { id: string }[]).map((b) => b.id)).toContain(taken.id);
      const restored = await berth(t.key, '--json', 'backups', 'restore', site.id, taken.id);
      expect([restored.code, JSON.parse(restored.stdout)]).toEqual([0, expect.objectContaining({ kind: 'RESTORE', status: 'SUCCEEDED' })]);
    } finally {
      follower.kill('SIGTERM');
    }

    const log = await berth(t.key, 'sites', 'logs', site.id, '--tail', '5');
    expect([log.code, log.stderr]).toEqual([0, '']);

    const hostname = `cli-${randomBytes(3).toString('hex')}.example.com`;
    expect((await berth(t.key, 'domains', 'add', site.id, hostname)).code).toBe(0);
    expect((await berth(t.key, '--json', 'domains', 'list', site.id)).stdout).toContain(hostname);
    const removed = await berth(t.key, 'domains', 'remove', site.id, hostname);
    expect(removed.code).toBe(0);
    expect((await berth(t.key, '--json', 'domains', 'list', site.id)).stdout).not.toContain(hostname);

    const spare = JSON.parse((await berth(h.admin, '--json', 'keys', 'create', t.tenant.id, '--name', 'spare')).stdout) as {
      id: string;
      key: string;
    };
    expect((await berth(spare.key, 'sites', 'list')).code).toBe(0);
    expect((await berth(h.admin, 'keys', 'revoke', spare.id)).code).toBe(0);
    const refused = await berth(spare.key, 'sites', 'list');
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/^berth: UNAUTHENTICATED: /)]);
  });

  it('shows a progress bar with the step names on a terminal (script(1) gives it one)', async () => {
    const t = await createTenant(h);
    const command = [process.execPath, join(root, 'bin/berth'), 'sites', 'create', 'tty'].map((a) => `'${a}'`).join(' ');
    const run = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        'script',
        ['-qfec', command, '/dev/null'],
        { env: { ...process.env, BERTH_URL: h.berth.url, BERTH_API_KEY: t.key, COLUMNS: '120' }, timeout: 170_000 },
        (error, stdout) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: stdout }),
      );
    });
    expect(run.code).toBe(0);
    // The bar redraws in place (back to column 1 each time), naming the step it is at, and ends full.
    const frames = run.out.split('\u001b[1G').filter((f) => f.startsWith('PROVISION ['));
    expect(frames.length).toBeGreaterThanOrEqual(3);
    // Each step the CLI hears of while it follows the job gets a frame of its own, in the job's
    // order. Which ones it hears of depends on how soon its subscription takes hold (on a busy
    // machine, after the first steps): that it names real steps, in order, is what is certain.
    const named = [...new Set(frames.flatMap((f) => [...f.matchAll(/(?:% |, )([^,]+?) \((?:running|succeeded)\)/g)].map((m) => m[1])))];
    expect(named.length).toBeGreaterThanOrEqual(1);
    const site = (await h.http.get('/v1/sites').set(auth(t.key)).expect(200)).body as { id: string }[];
    const events = (await h.http.get(`/v1/sites/${site[0].id}/events`).set(auth(t.key)).expect(200)).body as {
      data: { jobId?: string };
    }[];
    const jobId = events.find((e) => e.data.jobId)?.data.jobId;
    const job = (await h.http.get(`/v1/jobs/${jobId}`).set(auth(t.key)).expect(200)).body as { steps: { name: string }[] };
    const steps = job.steps.map((s) => s.name);
    expect(steps.length).toBeGreaterThanOrEqual(5);
    expect(named.every((n) => steps.includes(n))).toBe(true);
    expect(named.map((n) => steps.indexOf(n))).toEqual(named.map((n) => steps.indexOf(n)).sort((a, b) => a - b));
    expect(frames.some((f) => /^PROVISION \[=*-+\] \d+% [^,]+ \(running\)/.test(f))).toBe(true);
    expect(run.out).toMatch(/PROVISION \[=+\] 100% succeeded/);
    // Without a terminal the same command prints one line per step instead (the test above): no bar there.
    expect(run.out).not.toMatch(/^PROVISION \d+% /m);
  });
});
