/**
 * Hostile input, generated and mutated with fast-check, sent to every REST route (read from
 * the OpenAPI document) and every GraphQL operation (read from introspection): wrong types,
 * huge strings, unicode, control characters, shell metacharacters, path traversal, env
 * values with newlines, deep nesting, random JSON. Berth must never answer 5xx (nor
 * INTERNAL in GraphQL), leave no partial rows or Docker objects, and keep answering.
 * Then the limits: rate limit, body size, GraphQL depth and cost.
 */
import fc from 'fast-check';
import type { Client } from 'graphql-ws';
import { TEST_INSTANCE, testNames } from './env';
import { auth, createTenant, startHarness, uniqueSlug, type Harness } from './harness';
import { eventually } from './receivers';
import { envOf, exec, provision, removeSuiteObjects, sleep, wsClient } from './suite-helpers';
import { namePrefix } from '../src/sites/site-plan';

const SLUG = /^[a-z][a-z0-9-]{2,39}$/;
const SITE_NAME = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const FUZZ_SEED = Number(process.env.BERTH_FUZZ_SEED ?? Date.now() % 2_147_483_647);
const REST_RUNS = 900;
const GRAPHQL_RUNS = 800;
const WS_RUNS = 40;

// ---------- generators ----------
const HOSTILE = [
  '../../etc/passwd',
  '..%2f..%2fetc%2fpasswd',
  '%2e%2e%2f',
  '....//....//',
  '/etc/shadow',
  'C:\\Windows\\system32',
  '\\\\?\\C:\\',
  '$(reboot)',
  '`id`',
  '; rm -rf / #',
  '| cat /etc/shadow',
  '&& curl http://127.0.0.1:9/x',
  '$IFS$9',
  '${PATH}',
  '%s%s%s%n',
  '{{7*7}}',
  '${jndi:ldap://127.0.0.1/x}',
  "' OR 1=1 --",
  '"; DROP TABLE "Tenant"; --',
  '<script>alert(1)</script>',
  '<?php system($_GET[0]); ?>',
  'a\nb',
  'x\nWORDPRESS_DB_HOST=evil',
  'x\r\nX-Injected: 1',
  '\u0000',
  'nul\u0000byte',
  '\u001b[31mred',
  '\b\f\v\t',
  '\u2028\u2029',
  '\u202e\u0646\u0627',
  '🦄'.repeat(20),
  '\uD800',
  '\uDFFF\uD800',
  '\uFFFF\uFFFE',
  'İ',
  'ǅ',
  '\u200b',
  ' ',
  '',
  'null',
  'undefined',
  'NaN',
  'true',
  '[]',
  '{}',
  '-1',
  '0',
  '1e309',
  '-0',
  '0x41',
  '9'.repeat(40),
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
  '+275760-09-13T00:00:00.000Z',
  '-271821-04-20T00:00:00.000Z',
  '0000-01-01',
  '9999-12-31T23:59:59Z',
  '2024-02-30',
  'wp_x',
  'db_',
  'berth_',
  'berth_not-a-key',
  'mysql',
  'root',
  'localhost',
  'http://169.254.169.254/latest/meta-data/',
  'file:///etc/passwd',
  'javascript:alert(1)',
];
const hostileString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom(...HOSTILE), weight: 5 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }), weight: 1 },
  {
    arbitrary: fc
      .tuple(fc.constantFrom('$(', '`', ';', '|', '&&', '../', '%00', '\n', '\r\n', '\\'), fc.string({ maxLength: 12 }))
      .map(([a, b]) => a + b),
    weight: 2,
  },
  {
    arbitrary: fc.tuple(fc.constantFrom('x', 'é', '🦄', '\u0001'), fc.integer({ min: 250, max: 70_000 })).map(([c, n]) => c.repeat(n)),
    weight: 1,
  },
);
const scalar: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: hostileString, weight: 6 },
  { arbitrary: fc.integer(), weight: 1 },
  { arbitrary: fc.constantFrom(1e308, -1e308, 2 ** 31, 2 ** 53 + 1, -0.5, 0.01, 1.5, 32, 64, 257), weight: 1 },
  { arbitrary: fc.double(), weight: 1 },
  { arbitrary: fc.boolean(), weight: 1 },
  { arbitrary: fc.constant(null), weight: 1 },
);
/** An object nested `depth` levels (built in a loop: no recursion anywhere). */
const nested = (depth: number, leaf: unknown = 'x'): unknown => {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: scalar, weight: 8 },
  { arbitrary: fc.array(scalar, { maxLength: 5 }), weight: 1 },
  {
    arbitrary: fc.dictionary(
      hostileString.filter((s) => s.length < 50),
      scalar,
      { maxKeys: 5 },
    ),
    weight: 1,
  },
  { arbitrary: fc.jsonValue({ maxDepth: 4 }), weight: 1 },
  // (JSON.stringify recurses: deeper values are sent as raw text, see deepRaw)
  { arbitrary: fc.integer({ min: 10, max: 800 }).map((d) => nested(d)), weight: 1 },
);
const envArb = fc.dictionary(
  fc.oneof(
    fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,15}$/),
    fc.constantFrom('WORDPRESS_DB_PASSWORD', 'WORDPRESS_DB_HOST', 'PATH', 'LD_PRELOAD'),
    hostileString.filter((s) => s.length < 200),
  ),
  fc.oneof({ arbitrary: hostileString, weight: 5 }, { arbitrary: scalar, weight: 1 }),
  { maxKeys: 6 },
);
const siteName = fc.oneof(
  { arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{1,12}[a-z0-9]$/), weight: 3 },
  { arbitrary: hostileString, weight: 2 },
);
/** A field of a valid body: usually valid, often hostile, sometimes missing. */
const field = (valid: fc.Arbitrary<unknown>) =>
  fc.oneof({ arbitrary: valid, weight: 3 }, { arbitrary: hostileValue, weight: 2 }, { arbitrary: fc.constant(undefined), weight: 1 });

let ids: { tenantId: string; siteId: string; jobId: string; webhookId: string; keyId: string };
const idArb = () =>
  fc.oneof(
    { arbitrary: fc.constantFrom(ids.tenantId, ids.siteId, ids.jobId, ids.webhookId, ids.keyId), weight: 2 },
    { arbitrary: fc.uuid(), weight: 1 },
    { arbitrary: hostileString.filter((s) => s.length < 3000), weight: 4 },
  );
const tenantIdArb = () =>
  fc.oneof(
    { arbitrary: fc.constant(ids.tenantId), weight: 3 },
    { arbitrary: fc.uuid(), weight: 1 },
    { arbitrary: hostileString, weight: 1 },
  );

/** Valid request bodies (by route and by GraphQL input type) for fast-check to mutate. */
const inputs = () => {
  const createTenant = fc.record({
    slug: field(fc.stringMatching(/^[a-z][a-z0-9-]{2,12}$/)),
    name: field(hostileString),
    contactEmail: field(fc.constantFrom('ops@fuzz.example', 'a@b.c', 'x@[127.0.0.1]')),
    maxSites: field(fc.integer({ min: 0, max: 3 })),
    maxMemoryMb: field(fc.integer({ min: 64, max: 4096 })),
    maxCpus: field(fc.double({ min: 0.1, max: 4, noNaN: true })),
  });
  const updateTenant = fc.record({
    name: field(hostileString),
    contactEmail: field(fc.constant('new@fuzz.example')),
    maxSites: field(fc.integer({ min: 0, max: 3 })),
    suspended: field(fc.boolean()),
  });
  const createKey = fc.record({ role: field(fc.constantFrom('TENANT', 'TENANT_READONLY', 'ADMIN')), name: field(hostileString) });
  const resources = fc.record({
    memoryMb: field(fc.integer({ min: 32, max: 512 })),
    cpus: field(fc.double({ min: 0.05, max: 2, noNaN: true })),
  });
  const createSite = fc.record({
    name: field(siteName),
    tenantId: field(tenantIdArb()),
    env: field(envArb),
    restartPolicy: field(fc.constantFrom('no', 'always', 'unless-stopped', 'on-failure:3')),
    resources: field(resources),
  });
  const updateSite = fc.record({
    env: field(envArb),
    restartPolicy: field(fc.constantFrom('no', 'always')),
    resources: field(resources),
    imageTag: field(fc.constantFrom('latest', 'nope', '../../x')),
  });
  const createWebhook = fc.record({
    url: field(fc.constantFrom('http://127.0.0.1:9/hook', 'https://example.test/x', 'http://[::1]:9/x')),
    tenantId: field(tenantIdArb()),
    secret: field(hostileString),
    events: field(fc.array(fc.oneof(fc.constantFrom('site.down', 'site.up'), hostileString), { maxLength: 3 })),
    description: field(hostileString),
  });
  const updateWebhook = fc.record({
    url: field(fc.constant('http://127.0.0.1:9/other')),
    events: field(fc.array(hostileString, { maxLength: 3 })),
    active: field(fc.boolean()),
    description: field(hostileString),
  });
  return {
    rest: {
      'POST /v1/tenants': createTenant,
      'PATCH /v1/tenants/{id}': updateTenant,
      'POST /v1/tenants/{id}/api-keys': createKey,
      'POST /v1/sites': createSite,
      'PATCH /v1/sites/{id}': updateSite,
      'POST /v1/webhooks': createWebhook,
      'PATCH /v1/webhooks/{id}': updateWebhook,
    } as Record<string, fc.Arbitrary<Record<string, unknown>>>,
    graphql: {
      CreateTenantInput: createTenant,
      UpdateTenantInput: updateTenant,
      CreateApiKeyInput: createKey,
      CreateSiteInput: createSite,
      UpdateSiteInput: updateSite,
      CreateWebhookInput: createWebhook,
      UpdateWebhookInput: updateWebhook,
      ResourcesInput: resources,
    } as Record<string, fc.Arbitrary<Record<string, unknown>>>,
  };
};

const stringQuery = (q: unknown): string => (typeof q === 'string' ? q : (JSON.stringify(q) ?? ''));

/** encodeURIComponent that accepts lone surrogates. */
const encode = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, '\uFFFD'));
  }
};
const deepRaw = (n: number) => (n % 2 ? '['.repeat(n) + '1' + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n));

// ---------- sending ----------
interface Answer {
  status: number;
  code?: string;
  codes: string[];
  text: string;
}

/** Reads at most 2 s of the body: streams (SSE, followed logs) are cut there. */
async function readSome(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + 2000;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const next = await Promise.race([reader.read(), sleep(left).then(() => undefined)]);
    if (!next || next.done) break;
    text += decoder.decode(next.value, { stream: true });
    if (text.length > 1_000_000) break;
  }
  await reader.cancel().catch(() => undefined);
  return text;
}

async function send(h: Harness, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer | undefined> {
  let res: Response;
  try {
    res = await fetch(h.berth.url + path, { method, headers, body, signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    // The client refused to build the request (a header or URL it cannot send): nothing was sent.
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? '';
    // (instanceof TypeError does not work across Jest's realms: compare names)
    if (
      (e as Error).name === 'TypeError' &&
      (!/fetch failed/.test((e as Error).message) || /invalid .*header|header.*invalid/i.test(cause))
    )
      return undefined;
    throw e;
  }
  const text = (res.headers.get('content-type') ?? '').includes('text/event-stream') ? (await res.body?.cancel(), '') : await readSome(res);
  let parsed: { code?: string; errors?: { extensions?: { code?: string } }[] } | undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const codes = [parsed?.code, ...(Array.isArray(parsed?.errors) ? parsed!.errors.map((e) => e.extensions?.code) : [])].filter(
    (c): c is string => typeof c === 'string',
  );
  return { status: res.status, code: parsed?.code, codes, text };
}

describe('generated hostile requests', () => {
  let h: Harness;
  let keys: Record<'admin' | 'tenant' | 'readonly', string>;
  let routes: { method: string; path: string; key: string }[];
  let operations: {
    kind: 'query' | 'mutation' | 'subscription';
    name: string;
    args: { name: string; type: string; named: string }[];
    select: string;
  }[];
  const tried = { rest: 0, graphql: 0, ws: 0 };
  const created = { tenants: new Set<string>(), sites: new Set<string>(), webhooks: new Set<string>() };
  const setupRows = { tenants: new Set<string>(), sites: new Set<string>(), webhooks: new Set<string>() };
  /** Rows older than this belong to other suites of the same run. */
  let started: Date;

  beforeAll(async () => {
    h = await startHarness({ BERTH_RATE_LIMIT_PER_MINUTE: '0' });
    started = (await h.db.query('SELECT now() AS t')).rows[0].t;
    const t = await createTenant(h, uniqueSlug('fz'), { maxSites: 4 });
    const readonly = await h.http.post(`/v1/tenants/${t.tenant.id}/api-keys`).set(auth(h.admin)).send({ role: 'TENANT_READONLY' });
    const victim = await h.http.post(`/v1/tenants/${t.tenant.id}/api-keys`).set(auth(h.admin)).send({ name: 'victim' });
    keys = { admin: h.admin, tenant: t.key, readonly: readonly.body.key };
    const site = await provision(h, t.key, { name: 'base' });
    const hook = await h.http.post('/v1/webhooks').set(auth(t.key)).send({ url: 'http://127.0.0.1:9/hook' });
    const job = (await h.db.query('SELECT id FROM "Job" WHERE "siteId" = $1', [site.id])).rows[0].id;
    ids = { tenantId: t.tenant.id, siteId: site.id, jobId: job, webhookId: hook.body.id, keyId: victim.body.id };
    setupRows.tenants.add(t.tenant.id);
    setupRows.sites.add(site.id);
    setupRows.webhooks.add(hook.body.id);

    const doc = (await h.http.get('/docs-json')).body as { paths: Record<string, Record<string, unknown>> };
    routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => ({ method: m.toUpperCase(), path, key: `${m.toUpperCase()} ${path}` })),
    );
    const T = '{ kind name ofType { kind name ofType { kind name ofType { kind name } } } }';
    const intro = await h.http.post('/graphql').send({
      query: `{ __schema { queryType { fields { ...F } } mutationType { fields { ...F } } subscriptionType { fields { ...F } } types { name fields { name } } } }
        fragment F on __Field { name type ${T} args { name type ${T} } }`,
    });
    type TypeRef = { kind: string; name: string | null; ofType: TypeRef | null };
    const typeString = (t: TypeRef): string =>
      t.kind === 'NON_NULL' ? `${typeString(t.ofType!)}!` : t.kind === 'LIST' ? `[${typeString(t.ofType!)}]` : t.name!;
    const named = (t: TypeRef): string => (t.ofType ? named(t.ofType) : t.name!);
    const schema = intro.body.data.__schema;
    const fieldsOf = new Map<string, string[]>(
      schema.types.map((t: { name: string; fields: { name: string }[] | null }) => [t.name, (t.fields ?? []).map((f) => f.name)]),
    );
    const selection = (type: string) => {
      const f = fieldsOf.get(type) ?? [];
      return f.includes('id') ? '{ __typename id }' : f.includes('site') ? '{ __typename site { id } job { id } }' : '{ __typename }';
    };
    operations = (['query', 'mutation', 'subscription'] as const).flatMap((kind) =>
      ((schema[`${kind}Type`]?.fields ?? []) as { name: string; type: TypeRef; args: { name: string; type: TypeRef }[] }[]).map((f) => ({
        kind,
        name: f.name,
        select: selection(named(f.type)),
        args: f.args.map((a) => ({ name: a.name, type: typeString(a.type), named: named(a.type) })),
      })),
    );
    expect(routes.length).toBeGreaterThanOrEqual(29);
    expect(operations.length).toBeGreaterThanOrEqual(28);
  });

  afterAll(async () => {
    process.stdout.write(
      `hostile input: ${tried.rest} REST + ${tried.graphql} GraphQL over HTTP + ${tried.ws} over graphql-ws = ${tried.rest + tried.graphql + tried.ws} requests tried (seed ${FUZZ_SEED})\n`,
    );
    await h.stop();
    await removeSuiteObjects();
  });

  /** Remembers what a 2xx answer says was created. */
  const track = (route: string, a: Answer) => {
    if (a.status < 200 || a.status >= 300 || !['POST /v1/tenants', 'POST /v1/sites', 'POST /v1/webhooks'].includes(route)) return;
    const body = JSON.parse(a.text);
    if (route === 'POST /v1/tenants') created.tenants.add(body.id);
    if (route === 'POST /v1/sites') created.sites.add(body.site.id);
    if (route === 'POST /v1/webhooks') created.webhooks.add(body.id);
  };

  /** Berth's log lines about an INTERNAL answer (they carry its request id). */
  const logOf = (text: string) => {
    const id = text.match(/"requestId":"([0-9a-f-]{36})"/)?.[1];
    if (!id) return '';
    const out = h.berth.output();
    const at = out.indexOf(id);
    return at < 0 ? '' : ` | log: ${out.slice(at, at + 600)}`;
  };
  const record = (failures: string[], what: string, a: Answer) => {
    if (a.status >= 500 || a.codes.includes('INTERNAL')) {
      failures.push(`${what.slice(0, 600)} -> ${a.status} ${a.text.slice(0, 300)}${logOf(a.text)}`);
      return false;
    }
    return true;
  };

  it('REST: no generated request to any route gets a 5xx', async () => {
    const failures: string[] = [];
    const { rest: bodies } = inputs();
    const request = fc.constantFrom(...routes).chain((route) =>
      fc.record({
        route: fc.constant(route),
        params: fc.array(idArb(), { minLength: 3, maxLength: 3 }),
        rawParams: fc.boolean(),
        query: fc.dictionary(
          fc.oneof(
            fc.constantFrom('limit', 'offset', 'tenantId', 'status', 'siteId', 'type', 'before', 'tail', 'follow'),
            hostileString.filter((s) => s.length < 30),
          ),
          fc.oneof(
            hostileString.filter((s) => s.length < 5000),
            fc.integer().map(String),
          ),
          { maxKeys: 4 },
        ),
        body: fc.oneof(
          { arbitrary: (bodies[route.key] ?? fc.jsonValue({ maxDepth: 3 })).map((b) => JSON.stringify(b)), weight: 6 },
          { arbitrary: fc.jsonValue({ maxDepth: 4 }).map((b) => JSON.stringify(b)), weight: 1 },
          { arbitrary: hostileString, weight: 1 },
          { arbitrary: fc.integer({ min: 100, max: 20_000 }).map(deepRaw), weight: 1 },
          { arbitrary: fc.constant(undefined), weight: 1 },
        ),
        contentType: fc.constantFrom(
          'application/json',
          'application/json',
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          undefined,
        ),
        // Mostly header values a client can send; a few it cannot (skipped, not counted).
        idempotencyKey: fc.oneof(
          { arbitrary: fc.constant(null), weight: 6 },
          {
            arbitrary: fc.oneof(
              fc.stringMatching(/^[\x20-\x7e]{0,300}$/),
              fc.constantFrom(...HOSTILE.filter((x) => /^[\x20-\x7e]*$/.test(x))),
            ),
            weight: 3,
          },
          { arbitrary: hostileString, weight: 1 },
        ),
        who: fc.constantFrom('admin', 'admin', 'tenant', 'tenant', 'readonly') as fc.Arbitrary<'admin' | 'tenant' | 'readonly'>,
      }),
    );
    await fc
      .assert(
        fc.asyncProperty(request, async (r) => {
          let n = 0;
          const path = r.route.path.replace(/\{[^}]+\}/g, () => {
            const v = r.params[n++] ?? 'x';
            return r.rawParams ? v.replace(/[?#]/g, '') : encode(v);
          });
          const qs = new URLSearchParams(
            Object.entries(r.query).map(([k, v]): [string, string] => [
              k.replace(/[\uD800-\uDFFF]/g, '?'),
              v.replace(/[\uD800-\uDFFF]/g, '?'),
            ]),
          ).toString();
          const headers: Record<string, string> = { Authorization: `Bearer ${keys[r.who]}` };
          if (r.contentType) headers['Content-Type'] = r.contentType;
          if (r.idempotencyKey !== null) headers['Idempotency-Key'] = r.idempotencyKey;
          // The suite's own tenant must outlive the run: its deletion would revoke the keys it uses.
          if (r.who === 'admin' && r.route.key === 'DELETE /v1/tenants/{id}' && path.includes(ids.tenantId)) return true;
          const sendsBody = r.route.method !== 'GET' && r.route.method !== 'HEAD';
          const a = await send(h, r.route.method, path + (qs ? `?${qs}` : ''), headers, sendsBody ? r.body : undefined);
          if (!a) return true;
          tried.rest += 1;
          track(r.route.key, a);
          return record(failures, `${r.route.method} ${path}?${qs} as ${r.who} body ${String(r.body).slice(0, 200)}`, a);
        }),
        { numRuns: REST_RUNS, seed: FUZZ_SEED, endOnFailure: true },
      )
      .catch((e: Error) =>
        failures.push(`cause: ${String((e as { cause?: unknown }).cause ?? '').slice(0, 500)} | ${e.message.slice(0, 1500)}`),
      );
    expect(failures).toEqual([]);
    expect(tried.rest).toBeGreaterThan(REST_RUNS * 0.9);
  });

  /** A GraphQL literal for any JSON-ish value (keys that are not names make a parse error, which is fine). */
  const literal = (v: unknown, depth = 0): string => {
    if (depth > 50) return 'null';
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '1e999';
    if (typeof v === 'boolean') return String(v);
    if (Array.isArray(v)) return `[${v.map((x) => literal(x, depth + 1)).join(', ')}]`;
    return `{ ${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}: ${literal(x, depth + 1)}`)
      .join(', ')} }`;
  };

  const graphqlRequest = () => {
    const { graphql: inputTypes } = inputs();
    const argValue = (named: string): fc.Arbitrary<unknown> =>
      fc.oneof(
        {
          arbitrary:
            named === 'ID'
              ? idArb()
              : named === 'Int'
                ? fc.oneof(fc.integer({ min: -5, max: 300 }), fc.constant(2 ** 31))
                : named === 'Float'
                  ? fc.double()
                  : named === 'Boolean'
                    ? fc.boolean()
                    : named === 'String'
                      ? hostileString
                      : (inputTypes[named] ?? fc.constantFrom('RUNNING', 'FAILED', 'TENANT', 'nope')),
          weight: 4,
        },
        { arbitrary: hostileValue, weight: 2 },
        { arbitrary: fc.constant(undefined), weight: 1 },
      );
    const operation = fc.constantFrom(...operations).chain((op) =>
      fc
        .record({
          op: fc.constant(op),
          values: fc.tuple(...op.args.map((a) => argValue(a.named))),
          inline: fc.boolean(),
          extraSelection: fc.oneof(
            { arbitrary: fc.constant(null), weight: 5 },
            {
              arbitrary: fc.constantFrom(
                'nope',
                '__schema { types { name } }',
                'id id id',
                '... on Query { me { keyId } }',
                'a: __typename b: __typename',
              ),
              weight: 1,
            },
          ),
        })
        .map(({ op, values, inline, extraSelection }) => {
          const select = extraSelection ? op.select.replace(/}$/, ` ${extraSelection} }`) : op.select;
          if (inline) {
            const args = op.args
              .map((a, i) => (values[i] === undefined ? '' : `${a.name}: ${literal(values[i])}`))
              .filter(Boolean)
              .join(', ');
            return { query: `${op.kind} { ${op.name}${args ? `(${args})` : ''} ${select} }`, variables: {} as unknown };
          }
          const decl = op.args.map((a, i) => `$v${i}: ${a.type}`).join(', ');
          const args = op.args.map((a, i) => `${a.name}: $v${i}`).join(', ');
          const variables = Object.fromEntries(op.args.map((_, i) => [`v${i}`, values[i]]).filter(([, v]) => v !== undefined));
          return {
            query: `${op.kind}${decl ? `(${decl})` : ''} { ${op.name}${args ? `(${args})` : ''} ${select} }`,
            variables: variables as unknown,
          };
        }),
    );
    const garbage = fc.oneof(
      fc
        .integer({ min: 5, max: 6000 })
        .map((n) => ({ query: `{ ${'me { tenant { '.repeat(n)}id${' } }'.repeat(n)} }`, variables: {} as unknown })),
      fc.integer({ min: 10, max: 3000 }).map((n) => ({
        query: `{ ${Array.from({ length: n }, (_, i) => `a${i}: sites(limit: 200) { id env }`).join(' ')} }`,
        variables: {} as unknown,
      })),
      fc.constant({
        query: 'query { ...A } fragment A on Query { ...B } fragment B on Query { ...A me { keyId } }',
        variables: {} as unknown,
      }),
      fc.constant({
        query: '{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }',
        variables: {} as unknown,
      }),
      fc.integer({ min: 100, max: 30_000 }).map((n) => ({ query: '{'.repeat(n), variables: {} as unknown })),
      fc.tuple(hostileString, hostileValue).map(([q, v]) => ({ query: q, variables: v })),
      fc
        .tuple(fc.constantFrom('query', 'mutation', 'subscription'), hostileString)
        .map(([k, s]) => ({ query: `${k} ${s}`, variables: {} as unknown })),
      hostileValue.map((q) => ({ query: q as string, variables: {} as unknown })),
      fc.integer({ min: 10, max: 12_000 }).map((n) => ({
        query: 'mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } } }',
        variables: {} as unknown,
        raw: `{"query":"mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } } }","variables":{"i":{"name":"deep-env","env":${deepRaw(n)}}}}`,
      })),
    );
    return fc.oneof({ arbitrary: operation, weight: 5 }, { arbitrary: garbage, weight: 1 });
  };

  it('GraphQL over HTTP: no generated operation gets a 5xx or an INTERNAL error', async () => {
    const failures: string[] = [];
    await fc
      .assert(
        fc.asyncProperty(
          graphqlRequest(),
          fc.constantFrom('admin', 'admin', 'tenant', 'tenant', 'readonly') as fc.Arbitrary<'admin' | 'tenant' | 'readonly'>,
          fc.oneof({ arbitrary: fc.constant(null), weight: 8 }, { arbitrary: hostileString, weight: 1 }),
          async (r, who, operationName) => {
            const raw = (r as { raw?: string }).raw;
            const body =
              raw ?? JSON.stringify({ query: r.query, variables: r.variables, ...(operationName !== null ? { operationName } : {}) });
            if (who === 'admin' && body.includes('deleteTenant') && body.includes(ids.tenantId)) return true;
            const a = await send(h, 'POST', '/graphql', { Authorization: `Bearer ${keys[who]}`, 'Content-Type': 'application/json' }, body);
            if (!a) return true;
            tried.graphql += 1;
            try {
              const data = (JSON.parse(a.text) as { data?: Record<string, { id?: string; site?: { id?: string } } | null> }).data ?? {};
              if (data.createTenant?.id) created.tenants.add(data.createTenant.id);
              if (data.createSite?.site?.id) created.sites.add(data.createSite.site.id);
              if (data.createWebhook?.id) created.webhooks.add(data.createWebhook.id);
            } catch {
              // not JSON: checked by record()
            }
            return record(failures, `GraphQL as ${who}: ${body.slice(0, 400)}`, a);
          },
        ),
        { numRuns: GRAPHQL_RUNS, seed: FUZZ_SEED + 1, endOnFailure: true },
      )
      .catch((e: Error) =>
        failures.push(`cause: ${String((e as { cause?: unknown }).cause ?? '').slice(0, 500)} | ${e.message.slice(0, 1500)}`),
      );
    expect(failures).toEqual([]);
    expect(tried.graphql).toBeGreaterThan(GRAPHQL_RUNS * 0.9);
  });

  it('deeply nested GraphQL documents (fields, inline and named fragments, lists, objects) never get a 5xx', async () => {
    const failures: string[] = [];
    const shapes: Record<string, (n: number) => string> = {
      fields: (n) => `{ ${'me { tenant { '.repeat(n)}id${' } }'.repeat(n)} }`,
      inline: (n) => `{ ${'... on Query { '.repeat(n)}me { keyId }${' }'.repeat(n)} }`,
      spreads: (n) =>
        `{ ...F0 } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${i + 1} }`).join(' ')} fragment F${n} on Query { me { keyId } }`,
      list: (n) => `{ tenants(limit: ${'['.repeat(n)}1${']'.repeat(n)}) { id } }`,
      object: (n) => `mutation { createTenant(input: ${'{ a: '.repeat(n)}1${' }'.repeat(n)}) { id } }`,
      braces: (n) => '{'.repeat(n),
    };
    for (const [shape, make] of Object.entries(shapes)) {
      for (const n of [10, 100, 500, 1000, 1500, 2000, 3000, 4000, 8000, 16_000]) {
        const body = JSON.stringify({ query: make(n) });
        if (body.length > 64 * 1024) continue;
        const a = (await send(h, 'POST', '/graphql', { Authorization: `Bearer ${keys.admin}`, 'Content-Type': 'application/json' }, body))!;
        tried.graphql += 1;
        record(failures, `${shape} x${n}`, a);
        if (n >= 100 && shape !== 'list' && shape !== 'object' && a.status < 300 && !a.codes.length)
          failures.push(`${shape} x${n} was not refused`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('an explicit null in any field of any input is refused or accepted, never a 5xx (REST and GraphQL)', async () => {
    const failures: string[] = [];
    const bases: [string, string, Record<string, unknown>][] = [
      ['POST', '/v1/tenants', { slug: 'nl-tenant', name: 'N', contactEmail: 'n@n.example', maxSites: 1, maxMemoryMb: 128, maxCpus: 1 }],
      [
        'PATCH',
        `/v1/tenants/${ids.tenantId}`,
        { name: 'N', contactEmail: 'n@n.example', maxSites: 4, maxMemoryMb: 2048, maxCpus: 2, suspended: false },
      ],
      ['POST', `/v1/tenants/${ids.tenantId}/api-keys`, { role: 'TENANT', name: 'n' }],
      [
        'POST',
        '/v1/sites',
        { name: 'nl-site', tenantId: ids.tenantId, env: { A: 'b' }, restartPolicy: 'no', resources: { memoryMb: 64, cpus: 0.5 } },
      ],
      [
        'PATCH',
        `/v1/sites/${ids.siteId}`,
        { env: { A: 'b' }, restartPolicy: 'no', resources: { memoryMb: 64, cpus: 0.5 }, imageTag: 'latest' },
      ],
      [
        'POST',
        '/v1/webhooks',
        { url: 'http://127.0.0.1:9/n', tenantId: ids.tenantId, secret: 'n'.repeat(16), events: ['site.down'], description: 'n' },
      ],
      ['PATCH', `/v1/webhooks/${ids.webhookId}`, { url: 'http://127.0.0.1:9/n', events: ['site.down'], active: true, description: 'n' }],
    ];
    const variants = (base: Record<string, unknown>) =>
      Object.entries(base).flatMap(([k, v]) => [
        { ...base, [k]: null },
        ...(v && typeof v === 'object' && !Array.isArray(v)
          ? Object.keys(v).map((inner) => ({ ...base, [k]: { ...(v as object), [inner]: null } }))
          : []),
      ]);
    for (const [method, path, base] of bases) {
      for (const body of variants(base)) {
        const a = (await send(
          h,
          method,
          path,
          { Authorization: `Bearer ${keys.admin}`, 'Content-Type': 'application/json' },
          JSON.stringify(body),
        ))!;
        tried.rest += 1;
        track(`${method} ${path.replace(/[0-9a-f-]{36}/g, '{id}')}`, a);
        record(failures, `${method} ${path} ${JSON.stringify(body)}`, a);
      }
    }
    for (const op of operations.filter((o) => o.kind !== 'subscription')) {
      for (const [i, arg] of op.args.entries()) {
        if (arg.type.endsWith('!')) continue;
        const required = op.args
          .filter((a, j) => j !== i && a.type.endsWith('!'))
          .map((a) => `${a.name}: ${a.named === 'ID' ? JSON.stringify(ids.siteId) : '{}'}`);
        const query = `${op.kind} { ${op.name}(${[`${arg.name}: null`, ...required].join(', ')}) ${op.select} }`;
        const a = (await send(
          h,
          'POST',
          '/graphql',
          { Authorization: `Bearer ${keys.admin}`, 'Content-Type': 'application/json' },
          JSON.stringify({ query }),
        ))!;
        tried.graphql += 1;
        record(failures, query, a);
        const data = (JSON.parse(a.text) as { data?: Record<string, { id?: string; site?: { id?: string } } | null> }).data ?? {};
        if (data.createSite?.site?.id) created.sites.add(data.createSite.site.id);
      }
    }
    expect(failures).toEqual([]);
  });

  it('GraphQL over graphql-ws: generated operations end with a coded error or data, never INTERNAL, and the connection survives', async () => {
    const failures: string[] = [];
    const client: Client = wsClient(h, keys.tenant);
    try {
      const samples = fc.sample(graphqlRequest(), { numRuns: WS_RUNS, seed: FUZZ_SEED + 2 });
      for (const r of samples) {
        const outcome = await new Promise<string>((settle) => {
          // A valid subscription stays open: leave it after 500 ms.
          const timer = setTimeout(() => (stop(), settle('open')), 500);
          const resolve = (v: string) => (clearTimeout(timer), settle(v));
          const variables =
            r.variables && typeof r.variables === 'object' && !Array.isArray(r.variables)
              ? (r.variables as Record<string, unknown>)
              : { v: r.variables };
          const stop = client.subscribe<Record<string, { id?: string; site?: { id?: string } } | null>>(
            { query: stringQuery(r.query), variables },
            {
              next: (v) => {
                if (v.data?.createTenant?.id) created.tenants.add(v.data.createTenant.id);
                if (v.data?.createSite?.site?.id) created.sites.add(v.data.createSite.site.id);
                if (v.data?.createWebhook?.id) created.webhooks.add(v.data.createWebhook.id);
                resolve(JSON.stringify(v.errors?.map((e) => [e.extensions?.code, e.extensions?.requestId]) ?? 'data'));
              },
              error: (e) =>
                resolve(
                  Array.isArray(e)
                    ? JSON.stringify(e.map((x) => [x.extensions?.code, x.extensions?.requestId]))
                    : `closed ${(e as { code?: number }).code}`,
                ),
              complete: () => resolve('complete'),
            },
          );
        });
        tried.ws += 1;
        if (/INTERNAL|closed/.test(outcome))
          failures.push(
            `ws ${stringQuery(r.query).slice(0, 300)} ${JSON.stringify(r.variables)?.slice(0, 300)} -> ${outcome}${logOf(outcome.replace(/"([0-9a-f-]{36})"/, '"requestId":"$1"'))}`,
          );
      }
      // The same connection still works.
      const me = await new Promise<unknown>((resolve) =>
        client.subscribe({ query: '{ me { role } }' }, { next: (v) => resolve(v.data), error: resolve, complete: () => undefined }),
      );
      expect(me).toEqual({ me: { role: 'TENANT' } });
    } finally {
      await client.dispose();
    }
    expect(failures).toEqual([]);
  });

  it('env values with newlines and shell metacharacters stay one literal variable each', async () => {
    const t = await createTenant(h, uniqueSlug('fe'));
    const env = {
      INJECT: 'x\nWORDPRESS_DB_HOST=evil\nWORDPRESS_DB_PASSWORD=evil',
      SHELL: '$(touch /tmp/pwned); `touch /tmp/pwned2`; echo pwned > /var/www/html/pwned',
      UNICODE: '\u202e🦄\u2028é',
      EMPTY: '',
    };
    const site = await provision(h, t.key, { name: 'hostile-env', env });
    const info = await h.docker.getContainer(testNames.wpContainer(t.tenant.slug, 'hostile-env')).inspect();
    expect(envOf(info)).toMatchObject({ ...env, WORDPRESS_DB_HOST: 'mysql' });
    expect(envOf(info).WORDPRESS_DB_PASSWORD).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(info.Config.Env.filter((e) => e.startsWith('WORDPRESS_DB_HOST='))).toEqual(['WORDPRESS_DB_HOST=mysql']);
    const check = await exec(h.docker, info.Id, ['sh', '-c', 'ls /tmp/pwned /tmp/pwned2 /var/www/html/pwned 2>&1; true']);
    expect(check.out).not.toMatch(/^\/tmp\/pwned$|^\/var\/www\/html\/pwned$/m);
    expect((await h.http.get(`/v1/sites/${site.id}`).set(auth(t.key))).body.env).toEqual(env);
    created.tenants.add(t.tenant.id);
    created.sites.add(site.id);
  });

  it('afterwards: no partial rows, no Docker objects for invalid names, and Berth still answers', async () => {
    // Jobs the run queued may still be running; let them finish so the rows settle.
    await eventually(
      async () =>
        (await h.db.query(`SELECT 1 FROM "Job" WHERE status IN ('QUEUED', 'RUNNING') AND "createdAt" >= $1`, [started])).rowCount === 0 ||
        undefined,
      'the jobs the run queued to finish',
      150_000,
    );
    const tenants = (
      await h.db.query(
        'SELECT id, slug, name, "contactEmail", "maxSites", "maxMemoryMb", "maxCpus", "createdAt" >= $1 AS new FROM "Tenant"',
        [started],
      )
    ).rows;
    const sites = (
      await h.db.query(
        'SELECT s.id, s.name, s.env, s."tenantId", s."createdAt" >= $1 AS new, (SELECT count(*)::int FROM "Job" j WHERE j."siteId" = s.id AND j.kind = \'PROVISION\') AS provisions FROM "Site" s',
        [started],
      )
    ).rows;
    const hooks = (await h.db.query('SELECT id, url FROM "Webhook" WHERE "createdAt" >= $1', [started])).rows;
    const problems: string[] = [];
    // Every new row is one an answer reported as created: nothing written by a refused request.
    const expectKnown = (what: string, rows: { id: string }[], known: Set<string>) => {
      const extra = rows.map((r) => r.id).filter((id) => !known.has(id));
      if (extra.length) problems.push(`${what} rows no answer reported: ${extra.join(', ')}`);
    };
    expectKnown(
      'Tenant',
      tenants.filter((t) => t.new),
      new Set([...setupRows.tenants, ...created.tenants]),
    );
    expectKnown(
      'Site',
      sites.filter((s) => s.new),
      new Set([...setupRows.sites, ...created.sites]),
    );
    expectKnown('Webhook', hooks, new Set([...setupRows.webhooks, ...created.webhooks]));
    expect(tenants.filter((t) => t.new).length).toBeGreaterThanOrEqual(2);
    for (const t of tenants.filter((x) => x.new)) {
      if (
        !SLUG.test(t.slug) ||
        t.name.length < 1 ||
        t.name.length > 200 ||
        !/^[^@\s]+@[^@\s]+$/.test(t.contactEmail) ||
        t.maxSites < 0 ||
        t.maxSites > 10_000 ||
        t.maxMemoryMb < 64 ||
        t.maxCpus < 0.1
      )
        problems.push(`invalid tenant ${JSON.stringify(t)}`);
    }
    for (const s of sites.filter((x) => x.new)) {
      if (!SITE_NAME.test(s.name)) problems.push(`invalid site name ${JSON.stringify(s.name)}`);
      if (s.provisions !== 1) problems.push(`site ${s.id} has ${s.provisions} provisioning jobs`);
      for (const [k, v] of Object.entries(s.env as Record<string, unknown>)) {
        if (!ENV_NAME.test(k) || /^WORDPRESS_DB_/.test(k) || typeof v !== 'string')
          problems.push(`site ${s.id} env ${JSON.stringify(k)}=${JSON.stringify(v).slice(0, 50)}`);
      }
    }
    for (const w of hooks) if (!/^https?:\/\//.test(w.url)) problems.push(`webhook url ${w.url}`);

    // Docker objects: every name is built from a stored tenant slug and site name.
    const slugs = new Set(tenants.map((t) => t.slug as string));
    const siteNames = new Map<string, Set<string>>();
    for (const s of sites) {
      const slug = tenants.find((t) => t.id === s.tenantId)!.slug as string;
      siteNames.set(slug, (siteNames.get(slug) ?? new Set()).add(s.name));
    }
    // Names carry the instance's prefix; what follows it must be a tenant's and site's.
    const prefix = namePrefix(TEST_INSTANCE);
    const known = (name: string, pattern: RegExp) => {
      const m = name.startsWith(prefix) ? name.slice(prefix.length).match(pattern) : null;
      return Boolean(m && slugs.has(m[1]) && (m[2] === undefined || siteNames.get(m[1])?.has(m[2])));
    };
    const filters = { label: [`berth.instance=${TEST_INSTANCE}`] };
    const containers = await h.docker.listContainers({ all: true, filters });
    for (const c of containers) {
      const name = c.Names[0].replace(/^\//, '');
      if (!known(name, /^db_([a-z][a-z0-9-]{2,39})$/) && !known(name, /^wp_([a-z][a-z0-9-]{2,39})_([a-z][a-z0-9-]{1,38}[a-z0-9])$/))
        problems.push(`container ${JSON.stringify(name)}`);
    }
    const { Volumes } = await h.docker.listVolumes({ filters });
    for (const v of Volumes ?? []) {
      if (
        !known(v.Name, /^berth_([a-z][a-z0-9-]{2,39})_db$/) &&
        !known(v.Name, /^berth_([a-z][a-z0-9-]{2,39})_([a-z][a-z0-9-]{1,38}[a-z0-9])_data$/)
      )
        problems.push(`volume ${JSON.stringify(v.Name)}`);
    }
    for (const n of await h.docker.listNetworks({ filters }))
      if (!known(n.Name, /^berth_([a-z][a-z0-9-]{2,39})$/)) problems.push(`network ${JSON.stringify(n.Name)}`);
    expect(problems).toEqual([]);
    expect(containers.length).toBeGreaterThanOrEqual(2);

    // Still serving.
    expect((await h.http.get('/healthz')).status).toBe(200);
    const ready = await h.http.get('/readyz');
    expect(ready.status).toBe(200);
    expect((await h.http.get(`/v1/sites/${ids.siteId}`).set(auth(keys.admin))).status).toBe(200);
  });
});

describe('limits', () => {
  let h: Harness;
  let limitsKey: string;
  let limitsTenant: string;
  beforeAll(async () => {
    // Bursts of 5, then one a minute: the test has a minute before a key earns a request back.
    h = await startHarness({ BERTH_RATE_LIMIT_PER_MINUTE: '1', BERTH_RATE_LIMIT_BURST: '5', BERTH_GRAPHQL_MAX_DEPTH: '3' });
  });
  afterAll(async () => {
    await h.stop();
    await removeSuiteObjects();
  });

  it('a key gets 429 RATE_LIMITED with Retry-After after a burst of 5 requests, over REST, GraphQL and graphql-ws; others keep going', async () => {
    const tenant = await h.http
      .post('/v1/tenants')
      .set(auth(h.admin))
      .send({ slug: uniqueSlug('rl'), name: 'Rate', contactEmail: 'ops@rate.example' }); // admin: 1
    expect(tenant.status).toBe(201);
    const newKey = async () => (await h.http.post(`/v1/tenants/${tenant.body.id}/api-keys`).set(auth(h.admin)).send({})).body.key as string;
    const [restKey, gqlKey, wsKey] = [await newKey(), await newKey(), await newKey()]; // admin: 2, 3, 4
    limitsKey = await newKey(); // admin: 5
    limitsTenant = tenant.body.id;

    // Each answer says where the key stands: the burst, what is left of it, and when it is whole again.
    const standing: string[] = [];
    for (let i = 0; i < 5; i++) {
      const ok = await h.http.get(`/v1/tenants/${tenant.body.id}`).set(auth(restKey));
      expect(ok.status).toBe(200);
      expect([ok.headers['ratelimit-limit'], ok.headers['ratelimit-policy']]).toEqual(['5', '5;w=300']);
      expect(Number(ok.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(60 * (i + 1) - 1);
      standing.push(ok.headers['ratelimit-remaining']);
    }
    expect(standing).toEqual(['4', '3', '2', '1', '0']);
    const limited = await h.http.get(`/v1/tenants/${tenant.body.id}`).set(auth(restKey));
    expect(limited.status).toBe(429);
    expect(limited.headers['ratelimit-remaining']).toBe('0');
    expect(limited.body.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    // A limited write is not carried out.
    const write = await h.http.post('/v1/webhooks').set(auth(restKey)).send({ url: 'http://127.0.0.1:9/x' });
    expect(write.status).toBe(429);
    expect((await h.db.query('SELECT count(*)::int AS n FROM "Webhook" WHERE "tenantId" = $1', [tenant.body.id])).rows[0].n).toBe(0);

    for (let i = 0; i < 5; i++)
      expect((await h.http.post('/graphql').set(auth(gqlKey)).send({ query: '{ me { keyId } }' })).body.data.me.keyId).toBeTruthy();
    const gqlLimited = await h.http.post('/graphql').set(auth(gqlKey)).send({ query: '{ me { keyId } }' });
    expect(gqlLimited.body.errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(gqlLimited.body.errors[0].extensions.details.retryAfterSeconds).toBeGreaterThanOrEqual(1);

    const client = wsClient(h, wsKey);
    try {
      const outcomes: string[] = [];
      for (let i = 0; i < 6; i++) {
        outcomes.push(
          await new Promise<string>((resolve) =>
            client.subscribe(
              { query: '{ me { keyId } }' },
              {
                next: (v) => resolve(v.errors ? String(v.errors[0].extensions?.code) : 'ok'),
                error: (e) => resolve(Array.isArray(e) ? String(e[0].extensions?.code) : 'closed'),
                complete: () => undefined,
              },
            ),
          ),
        );
      }
      expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'RATE_LIMITED']);
    } finally {
      await client.dispose();
    }

    // Health checks are not limited; the admin key had its own budget of 5, now spent.
    for (let i = 0; i < 8; i++) expect((await h.http.get('/healthz')).status).toBe(200);
    const admin = await h.http.get('/v1/tenants').set(auth(h.admin));
    expect(admin.status).toBe(429);
    expect(admin.body.code).toBe('RATE_LIMITED');
  });

  it('refuses bodies over the size limit with 413 PAYLOAD_TOO_LARGE, REST and GraphQL', async () => {
    const rest = await h.http
      .post('/v1/tenants')
      .set(auth(h.admin))
      .send({ slug: uniqueSlug(), name: 'x'.repeat(70_000), contactEmail: 'a@b.example' });
    expect(rest.status).toBe(413);
    expect(rest.body.code).toBe('PAYLOAD_TOO_LARGE');
    const graphql = await h.http
      .post('/graphql')
      .set(auth(h.admin))
      .send({ query: `{ me { keyId } } # ${'x'.repeat(70_000)}` });
    expect(graphql.status).toBe(413);
    expect(graphql.body.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses GraphQL operations that are too deep or too costly with QUERY_TOO_COMPLEX before running them, over HTTP and graphql-ws', async () => {
    const deep = 'mutation($n: String!) { createSite(input: { name: $n }) { site { containers { name } } } }';
    const tooDeep = await h.http
      .post('/graphql')
      .set(auth(limitsKey))
      .send({ query: deep, variables: { n: 'too-deep' } });
    expect(tooDeep.body.errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toEqual(['QUERY_TOO_COMPLEX']);
    const costly = `{ ${Array.from({ length: 30 }, (_, i) => `a${i}: sites(limit: 200) { id name status url }`).join(' ')} }`;
    const tooCostly = await h.http.post('/graphql').set(auth(limitsKey)).send({ query: costly });
    expect(tooCostly.body.errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(tooCostly.body.data).toBeUndefined();

    const client = wsClient(h, limitsKey);
    try {
      for (const query of [deep, costly]) {
        const outcome = await new Promise<string>((resolve) =>
          client.subscribe(
            { query, variables: { n: 'too-deep-ws' } },
            {
              next: (v) => resolve(v.errors ? String(v.errors[0].extensions?.code) : 'data'),
              error: (e) => resolve(Array.isArray(e) ? String(e[0].extensions?.code) : 'closed'),
              complete: () => undefined,
            },
          ),
        );
        expect(outcome).toBe('QUERY_TOO_COMPLEX');
      }
    } finally {
      await client.dispose();
    }
    // Nothing ran: no site was created by the refused mutations.
    expect((await h.db.query('SELECT count(*)::int AS n FROM "Site" WHERE "tenantId" = $1', [limitsTenant])).rows[0].n).toBe(0);
  });
});
