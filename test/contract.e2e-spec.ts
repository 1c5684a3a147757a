import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildClientSchema, getIntrospectionQuery, isEnumType, isInputObjectType, isInterfaceType, isObjectType } from 'graphql';
import { auth, startHarness, uniqueSlug, type Harness } from './harness';

const root = join(__dirname, '..');

/** Runs one of the repository's scripts with node; resolves with its exit code and output, whatever the code. */
function runScript(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, 'scripts', script), ...args], { cwd: root, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

type Answer = { content?: Record<string, { schema: { allOf?: { properties?: { code?: { enum: string[] } } }[] } }> };
type Op = { operationId: string; summary?: string; security?: unknown[]; responses: Record<string, Answer | { $ref: string }> };
type Doc = { paths: Record<string, Record<string, Op>>; security?: unknown[]; components?: { responses?: Record<string, Answer> } };
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
const operations = (doc: Doc) =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, path, method, op })),
  );
/** The codes the document says an operation can answer with a status (following a shared answer's $ref). */
function documentedCodes(doc: Doc, op: Op, status: number): string[] {
  let answer = op.responses[String(status)] as Answer | { $ref: string } | undefined;
  if (answer && '$ref' in answer) answer = doc.components?.responses?.[answer.$ref.replace('#/components/responses/', '')];
  return answer?.content?.['application/problem+json']?.schema.allOf?.[1]?.properties?.code?.enum ?? [];
}

describe('the REST contract (/docs-json)', () => {
  let h: Harness;
  let doc: Doc;
  let dir: string;

  beforeAll(async () => {
    // At log level 'log', Nest prints each route it maps: the list of what the app serves.
    h = await startHarness({ BERTH_LOG_LEVEL: 'log', BERTH_ROLE: 'api' });
    const res = await h.http.get('/docs-json');
    expect(res.status).toBe(200);
    doc = res.body as Doc;
    dir = mkdtempSync(join(tmpdir(), 'berth-contract-'));
  });
  afterAll(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("passes Redocly's recommended ruleset with no error; a document without a summary fails it (the control)", async () => {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const lint = await runScript('openapi-lint.mjs', [file, '--json']);
    const result = JSON.parse(lint.stdout) as {
      errors: number;
      warnings: number;
      problems: { rule: string; severity: string; at: string }[];
    };
    expect(result.problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(lint.code).toBe(0);
    // The two health routes answer no 4xx (they take no input and need no key): the only warnings.
    expect(result.problems.map((p) => `${p.rule} ${p.at}`).sort()).toEqual([
      'operation-4xx-response #/paths/~1healthz/get/responses',
      'operation-4xx-response #/paths/~1readyz/get/responses',
    ]);

    const broken = structuredClone(doc);
    delete broken.paths['/v1/sites'].post.summary;
    writeFileSync(file, JSON.stringify(broken));
    const control = await runScript('openapi-lint.mjs', [file, '--json']);
    expect(control.code).toBe(1);
    expect(JSON.parse(control.stdout).problems).toContainEqual(
      expect.objectContaining({ rule: 'operation-summary', severity: 'error', at: '#/paths/~1v1~1sites/post/summary' }),
    );
  });

  it('is the committed openapi.json, which the typed client is generated from (npm run contract records a change)', () => {
    const committed = JSON.parse(readFileSync(join(root, 'openapi.json'), 'utf8')) as Doc;
    expect(operations(committed).length).toBeGreaterThanOrEqual(50);
    expect(doc).toEqual(committed);
  });

  it('documents every route the app serves, and nothing it does not', () => {
    const mapped = [...h.berth.output().matchAll(/Mapped \{([^,}]+), (\w+)\} route/g)]
      .map(([, path, method]) => `${method} ${path.replace(/:(\w+)/g, '{$1}')}`)
      .filter((route) => route !== 'POST /graphql'); // GraphQL's own contract is schema.graphql
    expect(mapped.length).toBeGreaterThanOrEqual(50);
    expect(mapped).toEqual(expect.arrayContaining(['POST /v1/sites', 'GET /v1/sites/{id}/logs', 'GET /healthz']));
    expect([...new Set(mapped)].sort()).toEqual(
      operations(doc)
        .map((o) => o.key)
        .sort(),
    );
  });

  it('names each operation for a client, secures all but the open routes, and lists the errors every caller can meet', () => {
    const ops = operations(doc);
    const ids = ops.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z]+[A-Za-z]*$/);
    expect(ids).toEqual(expect.arrayContaining(['createSite', 'listSites', 'getJob', 'cancelJob', 'createTenant', 'restoreSite']));
    expect(doc.security).toEqual([{ apiKey: [] }]);
    const open = ops.filter((o) => Array.isArray(o.op.security) && o.op.security.length === 0).map((o) => o.key);
    expect(open.sort()).toEqual(['GET /healthz', 'GET /metrics', 'GET /readyz', 'GET /v1/edge/ask']);
    for (const { key, op } of ops) {
      expect(op.summary).toBeTruthy();
      if (open.includes(key)) continue;
      // Every secured operation can meet a missing key, a key that may not, the rate limit and an internal error.
      expect([
        key,
        documentedCodes(doc, op, 401),
        documentedCodes(doc, op, 403),
        documentedCodes(doc, op, 429),
        documentedCodes(doc, op, 500),
      ]).toEqual([key, ['UNAUTHENTICATED'], expect.arrayContaining(['FORBIDDEN']), ['RATE_LIMITED'], ['INTERNAL']]);
    }
    expect(JSON.stringify(doc)).not.toMatch(/JWT/);
  });

  it('answers errors as problem+json with a code the document lists for that operation and status', async () => {
    const slug = uniqueSlug('ct');
    const tenant = await h.http
      .post('/v1/tenants')
      .set(auth(h.admin))
      .send({ slug, name: 'Contract', contactEmail: `ops@${slug}.example` });
    expect(tenant.status).toBe(201);
    const cases = [
      { op: 'GET /v1/sites', res: await h.http.get('/v1/sites') },
      { op: 'GET /v1/sites/{id}', res: await h.http.get('/v1/sites/6f1c2a7e-0000-4000-8000-000000000000').set(auth(h.admin)) },
      { op: 'POST /v1/sites', res: await h.http.post('/v1/sites').set(auth(h.admin)).send({ name: 'Not A Name!' }) },
      {
        op: 'POST /v1/tenants',
        res: await h.http
          .post('/v1/tenants')
          .set(auth(h.admin))
          .send({ slug, name: 'Again', contactEmail: `a@${slug}.example` }),
      },
      { op: 'GET /v1/jobs/{id}', res: await h.http.get('/v1/jobs/6f1c2a7e-0000-4000-8000-000000000000').set(auth(h.admin)) },
    ];
    const byKey = new Map(operations(doc).map((o) => [o.key, o.op]));
    const seen = cases.map(({ op, res }) => {
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toEqual(
        expect.objectContaining({ type: 'about:blank', title: res.body.code, status: res.status, detail: expect.any(String) }),
      );
      expect({ op, status: res.status, listed: documentedCodes(doc, byKey.get(op)!, res.status) }).toEqual({
        op,
        status: res.status,
        listed: expect.arrayContaining([res.body.code]),
      });
      return `${op} ${res.status} ${res.body.code}`;
    });
    expect(seen).toEqual([
      'GET /v1/sites 401 UNAUTHENTICATED',
      'GET /v1/sites/{id} 404 SITE_NOT_FOUND',
      'POST /v1/sites 400 VALIDATION_FAILED',
      'POST /v1/tenants 409 TENANT_SLUG_TAKEN',
      'GET /v1/jobs/{id} 404 JOB_NOT_FOUND',
    ]);
    await h.db.query('DELETE FROM "Tenant" WHERE id = $1', [tenant.body.id]);
  });
});

describe('the GraphQL contract (schema.graphql)', () => {
  let h: Harness;
  let dir: string;
  beforeAll(async () => {
    h = await startHarness({ BERTH_ROLE: 'api' });
    dir = mkdtempSync(join(tmpdir(), 'berth-schema-'));
  });
  afterAll(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the live schema is the committed one; a schema that clients of it would break on is refused (the control)', async () => {
    const check = await runScript('graphql-schema.mjs', [h.berth.url!, '--json']);
    expect([check.code, check.stderr.trim()]).toEqual([0, 'the live schema is schema.graphql']);
    expect(JSON.parse(check.stdout)).toEqual({ same: true, breaking: [], dangerous: [] });

    // Control: against a contract that had one more query field, the live schema removes it.
    const committed = readFileSync(join(root, 'schema.graphql'), 'utf8');
    const older = join(dir, 'older.graphql');
    writeFileSync(older, committed.replace(/^type Query \{\n/m, 'type Query {\n  retiredField: String\n'));
    const control = await runScript('graphql-schema.mjs', [h.berth.url!, '--json', '--against', older]);
    expect(control.code).toBe(1);
    expect(JSON.parse(control.stdout).breaking).toEqual([{ type: 'FIELD_REMOVED', description: 'Query.retiredField was removed.' }]);
  });

  it('describes every type, field, argument and enum value', async () => {
    const res = await h.http.post('/graphql').send({ query: getIntrospectionQuery({ descriptions: true }) });
    const schema = buildClientSchema(res.body.data);
    const missing: string[] = [];
    let described = 0;
    const note = (what: string, description: string | null | undefined) => (description ? described++ : missing.push(what));
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__') || ['String', 'Int', 'Float', 'Boolean', 'ID'].includes(type.name)) continue;
      if (!['Query', 'Mutation', 'Subscription'].includes(type.name)) note(type.name, type.description);
      if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) {
          note(`${type.name}.${field.name}`, field.description);
          for (const arg of 'args' in field ? field.args : []) note(`${type.name}.${field.name}(${arg.name})`, arg.description);
        }
      }
      if (isEnumType(type)) for (const value of type.getValues()) note(`${type.name}.${value.name}`, value.description);
    }
    expect(described).toBeGreaterThan(300);
    expect(missing).toEqual([]);
  });
});
