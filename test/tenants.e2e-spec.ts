import { auth, createTenant, gql, startHarness, uniqueSlug, type Harness } from './harness';
import { eventually } from './receivers';
import { removeSuiteObjects } from './suite-helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
  await removeSuiteObjects();
});

describe('tenants over REST', () => {
  it('creates, reads, lists and updates a tenant with the admin key', async () => {
    const slug = uniqueSlug();
    const created = await h.http
      .post('/v1/tenants')
      .set(auth(h.admin))
      .send({ slug, name: 'Acme', contactEmail: 'ops@acme.example', maxSites: 3 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ slug, name: 'Acme', contactEmail: 'ops@acme.example', maxSites: 3, status: 'ACTIVE' });
    expect(created.body).not.toHaveProperty('dbRootPasswordEnc');

    const got = await h.http.get(`/v1/tenants/${created.body.id}`).set(auth(h.admin));
    expect(got.status).toBe(200);
    expect(got.body.id).toBe(created.body.id);

    const list = await h.http.get('/v1/tenants?limit=200').set(auth(h.admin));
    expect(list.status).toBe(200);
    expect(list.body.map((t: { id: string }) => t.id)).toContain(created.body.id);

    const patched = await h.http
      .patch(`/v1/tenants/${created.body.id}`)
      .set(auth(h.admin))
      .send({ name: 'Acme 2', maxSites: 5, suspended: true });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: 'Acme 2', maxSites: 5, status: 'SUSPENDED' });
    const resumed = await h.http.patch(`/v1/tenants/${created.body.id}`).set(auth(h.admin)).send({ suspended: false });
    expect(resumed.body.status).toBe('ACTIVE');
  });

  it('records an audit event with the acting key for each change', async () => {
    const { tenant } = await createTenant(h);
    await h.http.patch(`/v1/tenants/${tenant.id}`).set(auth(h.admin)).send({ name: 'Renamed' });
    const { rows } = await h.db.query('SELECT type, "actorKeyId" FROM "Event" WHERE "tenantId" = $1 ORDER BY "createdAt"', [tenant.id]);
    expect(rows.map((e) => e.type)).toEqual(['tenant.created', 'api_key.created', 'tenant.updated']);
    expect(rows.every((e) => e.actorKeyId !== null)).toBe(true);
  });

  it.each([
    ['a slug with capitals', { slug: 'Acme' }, /slug/],
    ['a slug starting with a digit', { slug: '1acme' }, /slug/],
    ['a slug of two characters', { slug: 'ab' }, /slug/],
    ['a slug of 41 characters', { slug: 'a'.repeat(41) }, /slug/],
    ['a slug with an underscore', { slug: 'ac_me' }, /slug/],
    ['a bad email', { contactEmail: 'not-an-email' }, /contactEmail/],
    ['an unknown field', { color: 'blue' }, /color should not exist/],
    ['a negative quota', { maxSites: -1 }, /maxSites/],
    ['a string quota', { maxSites: 'ten' }, /maxSites/],
  ])('refuses %s with 400 and writes nothing', async (_what, patch, message) => {
    const slug = uniqueSlug();
    const res = await h.http
      .post('/v1/tenants')
      .set(auth(h.admin))
      .send({ slug, name: 'X', contactEmail: 'x@x.example', ...patch });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    expect(res.body.detail).toMatch(message);
    const list = await h.http.get('/v1/tenants?limit=200').set(auth(h.admin));
    expect(list.body.map((t: { slug: string }) => t.slug)).not.toContain((patch as { slug?: string }).slug ?? slug);
  });

  it('refuses a duplicate slug with 409', async () => {
    const { tenant } = await createTenant(h);
    const res = await h.http.post('/v1/tenants').set(auth(h.admin)).send({ slug: tenant.slug, name: 'Again', contactEmail: 'a@b.example' });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('TENANT_SLUG_TAKEN');
  });

  it('refuses malformed JSON and an oversized body', async () => {
    const bad = await h.http.post('/v1/tenants').set(auth(h.admin)).set('Content-Type', 'application/json').send('{"slug":');
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('VALIDATION_FAILED');
    const huge = await h.http
      .post('/v1/tenants')
      .set(auth(h.admin))
      .send({ slug: uniqueSlug(), name: 'x'.repeat(200_000), contactEmail: 'a@b.example' });
    expect(huge.status).toBe(413);
    expect(huge.body.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers 404 for an unknown tenant id, well-formed or not', async () => {
    for (const id of ['00000000-0000-0000-0000-000000000000', 'nope', '../../etc']) {
      const res = await h.http.get(`/v1/tenants/${encodeURIComponent(id)}`).set(auth(h.admin));
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('TENANT_NOT_FOUND');
    }
  });
});

describe('API keys', () => {
  it('are refused when missing, malformed or unknown', async () => {
    expect((await h.http.get('/v1/tenants')).status).toBe(401);
    expect((await h.http.get('/v1/tenants').set('Authorization', 'Basic abc')).status).toBe(401);
    const res = await h.http.get('/v1/tenants').set(auth('berth_not-a-real-key'));
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('UNAUTHENTICATED');
  });

  it('are shown once, stored hashed, and record when they were last used', async () => {
    const { tenant, key, keyId } = await createTenant(h);
    expect(key).toMatch(/^berth_[A-Za-z0-9_-]{43}$/);
    const keyRow = async () => (await h.db.query('SELECT * FROM "ApiKey" WHERE id = $1', [keyId])).rows[0];
    const row = await keyRow();
    expect(JSON.stringify(row)).not.toContain(key);
    expect(row.lastUsedAt).toBeNull();
    expect((await h.http.get(`/v1/tenants/${tenant.id}`).set(auth(key))).status).toBe(200);
    // lastUsedAt is written after the answer, so wait for it rather than for a fixed time.
    const used = await eventually(
      async () => ((await keyRow()).lastUsedAt ? keyRow() : undefined),
      'lastUsedAt to be recorded',
      10_000,
      50,
    );
    expect(used.lastUsedAt).not.toBeNull();
    const listed = await h.http.get(`/v1/tenants/${tenant.id}/api-keys`).set(auth(h.admin));
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).not.toMatch(/hash|berth_[A-Za-z0-9_-]{43}/);
  });

  it('a tenant key sees its own tenant only, and another tenant answers like a missing one', async () => {
    const a = await createTenant(h);
    const b = await createTenant(h);
    const own = await h.http.get(`/v1/tenants/${a.tenant.id}`).set(auth(a.key));
    expect(own.status).toBe(200);
    const other = await h.http.get(`/v1/tenants/${b.tenant.id}`).set(auth(a.key));
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('TENANT_NOT_FOUND');
    const list = await h.http.get('/v1/tenants').set(auth(a.key));
    expect(list.body.map((t: { id: string }) => t.id)).toEqual([a.tenant.id]);
    expect((await h.http.post(`/v1/tenants/${b.tenant.id}/api-keys`).set(auth(a.key)).send({})).status).toBe(404);
    expect((await h.http.patch(`/v1/tenants/${b.tenant.id}`).set(auth(a.key)).send({ name: 'x' })).status).toBe(404);
    expect((await h.http.delete(`/v1/api-keys/${b.keyId}`).set(auth(a.key))).status).toBe(404);
  });

  it('a tenant key is refused on admin-only operations', async () => {
    const a = await createTenant(h);
    const create = await h.http.post('/v1/tenants').set(auth(a.key)).send({ slug: uniqueSlug(), name: 'x', contactEmail: 'a@b.example' });
    expect(create.status).toBe(403);
    expect(create.body.code).toBe('FORBIDDEN');
    const quota = await h.http.patch(`/v1/tenants/${a.tenant.id}`).set(auth(a.key)).send({ maxSites: 1000 });
    expect(quota.status).toBe(403);
    const suspend = await h.http.patch(`/v1/tenants/${a.tenant.id}`).set(auth(a.key)).send({ suspended: true });
    expect(suspend.status).toBe(403);
    const after = await h.http.get(`/v1/tenants/${a.tenant.id}`).set(auth(a.key));
    expect(after.body).toMatchObject({ status: 'ACTIVE', maxSites: 10 });
  });

  it('a revoked key is refused', async () => {
    const a = await createTenant(h);
    expect((await h.http.get(`/v1/tenants/${a.tenant.id}`).set(auth(a.key))).status).toBe(200);
    const revoked = await h.http.delete(`/v1/api-keys/${a.keyId}`).set(auth(h.admin));
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const res = await h.http.get(`/v1/tenants/${a.tenant.id}`).set(auth(a.key));
    expect(res.status).toBe(401);
  });

  it('a key revoked through one API process is refused at once by another that had it cached', async () => {
    // A second API process on the same PostgreSQL and Redis, remembering keys for 5 minutes.
    const other = await startHarness({ BERTH_ROLE: 'api', BERTH_AUTH_CACHE_MS: '300000' });
    try {
      const a = await createTenant(h);
      for (const p of [h, other]) expect((await p.http.get(`/v1/tenants/${a.tenant.id}`).set(auth(a.key))).status).toBe(200);
      // The other process remembers the key: a revocation behind Berth's back (in the table)
      // goes unseen there until the memory expires...
      await h.db.query('UPDATE "ApiKey" SET "revokedAt" = now() WHERE id = $1', [a.keyId]);
      expect((await other.http.get(`/v1/tenants/${a.tenant.id}`).set(auth(a.key))).status).toBe(200);
      await h.db.query('UPDATE "ApiKey" SET "revokedAt" = NULL WHERE id = $1', [a.keyId]);
      // ...but one made through the API reaches every process.
      expect((await h.http.delete(`/v1/api-keys/${a.keyId}`).set(auth(h.admin))).status).toBe(200);
      // The revocation travels through Redis: allow it a moment, far less than the cache's 5 minutes.
      const refused = await eventually(
        async () => {
          const res = await other.http.get(`/v1/tenants/${a.tenant.id}`).set(auth(a.key));
          return res.status === 401 ? res : undefined;
        },
        'the other process to refuse the revoked key',
        5_000,
        50,
      );
      expect(refused.body.code).toBe('UNAUTHENTICATED');
      expect((await h.http.get(`/v1/tenants/${a.tenant.id}`).set(auth(a.key))).status).toBe(401);
    } finally {
      await other.stop();
    }
  });

  it('a read-only key can read but not change anything', async () => {
    const a = await createTenant(h);
    const ro = await h.http.post(`/v1/tenants/${a.tenant.id}/api-keys`).set(auth(h.admin)).send({ role: 'TENANT_READONLY' });
    expect(ro.status).toBe(201);
    expect((await h.http.get(`/v1/tenants/${a.tenant.id}`).set(auth(ro.body.key))).status).toBe(200);
    const write = await h.http.patch(`/v1/tenants/${a.tenant.id}`).set(auth(ro.body.key)).send({ name: 'x' });
    expect(write.status).toBe(403);
    const admin = await h.http.post(`/v1/tenants/${a.tenant.id}/api-keys`).set(auth(h.admin)).send({ role: 'ADMIN' });
    expect(admin.status).toBe(400);
  });
});

describe('tenants over GraphQL', () => {
  it('runs the same flows: createTenant, tenant, tenants, updateTenant, createApiKey, me, revokeApiKey', async () => {
    const slug = uniqueSlug('g');
    const created = await gql<{ createTenant: { id: string; slug: string; status: string } }>(
      h,
      h.admin,
      'mutation($i: CreateTenantInput!) { createTenant(input: $i) { id slug status } }',
      { i: { slug, name: 'GQL', contactEmail: 'g@q.example' } },
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.createTenant.id;
    expect(created.data!.createTenant).toMatchObject({ slug, status: 'ACTIVE' });

    const key = await gql<{ createApiKey: { id: string; key: string } }>(
      h,
      h.admin,
      'mutation($t: ID!) { createApiKey(tenantId: $t) { id key role } }',
      { t: id },
    );
    expect(key.errors).toBeUndefined();
    const tenantKey = key.data!.createApiKey.key;

    const me = await gql<{ me: { role: string; tenant: { id: string } } }>(h, tenantKey, '{ me { role tenant { id } } }');
    expect(me.data!.me).toEqual({ role: 'TENANT', tenant: { id } });

    const list = await gql<{ tenants: { id: string }[] }>(h, tenantKey, '{ tenants { id } }');
    expect(list.data!.tenants).toEqual([{ id }]);

    const updated = await gql<{ updateTenant: { name: string } }>(
      h,
      tenantKey,
      'mutation($id: ID!) { updateTenant(id: $id, input: { name: "Renamed" }) { name } }',
      { id },
    );
    expect(updated.data!.updateTenant.name).toBe('Renamed');

    const revoked = await gql<{ revokeApiKey: { revokedAt: string } }>(
      h,
      h.admin,
      'mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }',
      { id: key.data!.createApiKey.id },
    );
    expect(revoked.data!.revokeApiKey.revokedAt).toBeTruthy();
    const after = await gql(h, tenantKey, '{ me { role } }');
    expect(after.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('gives coded errors: bad input, duplicate, forbidden, not found, no key', async () => {
    const bad = await gql(
      h,
      h.admin,
      'mutation { createTenant(input: { slug: "Bad Slug", name: "x", contactEmail: "x@y.example" }) { id } }',
    );
    expect(bad.errors?.[0].extensions?.code).toBe('VALIDATION_FAILED');
    expect(bad.errors?.[0].message).toMatch(/slug/);

    const { tenant, key } = await createTenant(h);
    const dup = await gql(
      h,
      h.admin,
      `mutation { createTenant(input: { slug: "${tenant.slug}", name: "x", contactEmail: "x@y.example" }) { id } }`,
    );
    expect(dup.errors?.[0].extensions?.code).toBe('TENANT_SLUG_TAKEN');

    const forbidden = await gql(
      h,
      key,
      `mutation { createTenant(input: { slug: "${uniqueSlug()}", name: "x", contactEmail: "x@y.example" }) { id } }`,
    );
    expect(forbidden.errors?.[0].extensions?.code).toBe('FORBIDDEN');

    const other = await createTenant(h);
    const hidden = await gql(h, key, `{ tenant(id: "${other.tenant.id}") { id } }`);
    expect(hidden.errors?.[0].extensions?.code).toBe('TENANT_NOT_FOUND');

    const anonymous = await gql(h, undefined, '{ tenants { id } }');
    expect(anonymous.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');

    const unknownField = await gql(h, h.admin, '{ tenants { id password } }');
    expect(unknownField.errors?.[0].extensions?.code).toBe('VALIDATION_FAILED');
  });
});
