import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auth, createTenant, startHarness, type Harness } from './harness';
import { TEST_SLOT } from './env';
import { eventually } from './receivers';
import { provision, removeSuiteObjects } from './suite-helpers';

const root = join(__dirname, '..');
const TOKEN = 'berth-e2e-metrics-token-0123456789';
const PROMETHEUS_PORT = 19090 + TEST_SLOT;

/** One value of an instant query over what the test's Prometheus scraped (undefined: no sample yet). */
async function query(expr: string): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { data?: { result: { value: [number, string] }[] } };
  const sample = body.data?.result[0];
  return sample ? Number(sample.value[1]) : undefined;
}

describe('GET /metrics, scraped by a real Prometheus', () => {
  let h: Harness;
  let prometheus: ChildProcess | undefined;
  let dir: string;
  let prometheusLog = '';

  beforeAll(async () => {
    h = await startHarness({ BERTH_METRICS_TOKEN: TOKEN, BERTH_RATE_LIMIT_PER_MINUTE: '600', BERTH_RATE_LIMIT_BURST: '5' });
    dir = mkdtempSync(join(tmpdir(), 'berth-prometheus-'));
    const target = new URL(h.berth.url!).host;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: ['${join(root, 'ops/prometheus/alerts.yml')}']`,
        'scrape_configs:',
        '  - job_name: berth',
        `    authorization: { credentials: '${TOKEN}' }`,
        `    static_configs: [{ targets: ['${target}'] }]`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stderr!.on('data', (c: Buffer) => (prometheusLog = (prometheusLog + c.toString()).slice(-8000)));
  });

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    await h.stop();
    await removeSuiteObjects();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers only with the metrics token, in a format promtool accepts', async () => {
    const refused = await h.http.get('/metrics');
    expect([refused.status, refused.body.code]).toEqual([403, 'FORBIDDEN']);
    const wrong = await h.http.get('/metrics').set(auth('not-the-token-0123456789'));
    expect(wrong.status).toBe(403);
    const scraped = await h.http.get('/metrics').set(auth(TOKEN));
    expect(scraped.status).toBe(200);
    expect(scraped.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    // Node's process metrics come with Berth's own.
    expect(scraped.text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(scraped.text).toMatch(/^# TYPE berth_http_request_duration_seconds histogram$/m);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: scraped.text, encoding: 'utf8' });
    expect([check.status, check.stdout + check.stderr]).toEqual([0, '']);
  });

  it('counts what the test caused, as Prometheus reads it: jobs by kind and status, requests by route template, rate-limit refusals; no id in any label', async () => {
    const t = await createTenant(h);
    const sites = [await provision(h, t.key, { name: 'one' }), await provision(h, t.key, { name: 'two' })];
    const missing = randomUUID();
    for (let i = 0; i < 3; i++) expect((await h.http.get(`/v1/sites/${missing}`).set(auth(t.key))).status).toBe(404);
    // A key of its own spends its burst of 5 at once: the rest are refused.
    const burst = await h.http.post(`/v1/tenants/${t.tenant.id}/api-keys`).set(auth(h.admin)).send({ name: 'burst' });
    const answers = await Promise.all(Array.from({ length: 12 }, () => h.http.get('/v1/sites').set(auth(burst.body.key))));
    const refused = answers.filter((a) => a.status === 429).length;
    expect(refused).toBeGreaterThanOrEqual(5);

    const wanted: Record<string, number> = {
      'berth_jobs_finished_total{kind="PROVISION",status="SUCCEEDED"}': 2,
      'sum(berth_job_duration_seconds_count{kind="PROVISION",status="SUCCEEDED"})': 2,
      'sum(berth_http_request_duration_seconds_count{route="/v1/sites/:id",method="GET",status="404"})': 3,
      berth_rate_limited_total: refused,
    };
    const read = async () => Object.fromEntries(await Promise.all(Object.keys(wanted).map(async (q) => [q, await query(q)] as const)));
    await eventually(
      async () => {
        const now = await read();
        return Object.entries(wanted).every(([q, v]) => now[q] === v) ? now : undefined;
      },
      `Prometheus to read ${JSON.stringify(wanted)} (log: ${prometheusLog.slice(-500)})`,
      60_000,
      500,
    );
    // Gauges read from PostgreSQL at scrape time: the two sites run (other suites' sites may too).
    expect(await query('sum(berth_sites{status="RUNNING"})')).toBeGreaterThanOrEqual(2);
    expect(await query('count(berth_job_step_duration_seconds_count{kind="PROVISION"})')).toBeGreaterThanOrEqual(3);

    // Labels stay bounded: the requests for a site's id were counted (above) under the route template, never under the id.
    const text = (await h.http.get('/metrics').set(auth(TOKEN))).text;
    expect(text).toMatch(/route="\/v1\/sites\/:id"/);
    for (const id of [missing, t.tenant.id, ...sites.map((s) => s.id)]) expect(text).not.toContain(id);
  });

  it('loads the alert rules (the five asked for and one for when Berth cannot be observed), which promtool checks and tests', async () => {
    const check = spawnSync('promtool', ['check', 'rules', 'alerts.yml'], { cwd: join(root, 'ops/prometheus'), encoding: 'utf8' });
    expect([check.status, check.stdout]).toEqual([0, expect.stringContaining('SUCCESS: 6 rules found')]);
    const unit = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: join(root, 'ops/prometheus'), encoding: 'utf8' });
    expect([unit.status, unit.stdout]).toEqual([0, expect.stringContaining('SUCCESS')]);
    // The live Prometheus evaluates them against Berth's metrics without error.
    const rules = await eventually(
      async () => {
        const res = await fetch(`http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/rules`);
        const body = (await res.json()) as { data: { groups: { rules: { name: string; health: string; lastEvaluation: string }[] }[] } };
        const all = body.data.groups.flatMap((g) => g.rules);
        return all.length === 6 && all.every((r) => r.health === 'ok' && !r.lastEvaluation.startsWith('0001')) ? all : undefined;
      },
      'the alert rules evaluated',
      30_000,
      500,
    );
    expect(rules.map((r) => r.name).sort()).toEqual([
      'BerthEdgeErrors',
      'BerthJobsFailing',
      'BerthQueueStuck',
      'BerthReconcileFailing',
      'BerthSitesDown',
      'BerthUnobserved',
    ]);
  });
});
