/**
 * The authorisation matrix: every REST route and every GraphQL query, mutation and
 * subscription, called by every kind of caller. The routes and operations are read from
 * the running service (OpenAPI document, GraphQL introspection), so a new one that is not
 * listed here makes the coverage test fail.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from 'graphql-ws';
import type { Redis } from 'ioredis';
import { auth, createTenant, startHarness, uniqueSlug, waitForJob, type Harness } from './harness';
import { TestWebhookReceiver, eventually } from './receivers';
import { provision, removeSuiteObjects, testRedis, wsClient } from './suite-helpers';

type Who = 'none' | 'malformed' | 'revoked' | 'other' | 'owner' | 'readonly' | 'admin';
const CALLERS: Who[] = ['none', 'malformed', 'revoked', 'other', 'owner', 'readonly', 'admin'];
type Access = 'read' | 'write' | 'admin';
type Expect = 'unauthenticated' | 'forbidden' | 'hidden' | 'ok';

/** The objects of tenant A a call is aimed at. */
interface Ids {
  tenantId: string;
  siteId: string;
  actSiteId: string;
  jobId: string;
  /** A job that is still queued, for cancellations. */
  queuedJobId: string;
  webhookId: string;
  apiKeyId: string;
  /** A custom domain of the act site. */
  domain: string;
  /** A backup of the act site. */
  backupId: string;
}

interface Outcome {
  ok: boolean;
  status: number;
  code?: string;
  /** The answer with every UUID masked, to compare a hidden object with a missing one. */
  shape: string;
  body: string;
}

interface Op {
  name: string;
  access: Access;
  /** Aimed at an object of tenant A (so another tenant must not see it). */
  scoped: boolean;
  /** How another tenant's object looks: a 404 (default), or an empty list for list filters. */
  hiddenAs?: 'not-found' | 'empty';
  /**
   * An error code that also counts as passing authorisation: the nodes API answers
   * NOT_A_CLUSTER on a single engine (test/swarm.e2e-spec.ts calls it on a real cluster).
   */
  admits?: string;
  /** Destructive calls that succeed get an object of their own (the shared ones must survive). */
  fresh?: (who: 'owner' | 'admin') => Promise<Partial<Ids>>;
  call(key: string | undefined, ids: Ids): Promise<Outcome>;
}

const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const mask = (s: string) => s.replace(UUID_RE, '<uuid>');

let h: Harness;
let redis: Redis;
const receiver = new TestWebhookReceiver();
let hookUrl: string;
const keys = {} as Record<Who, string | undefined>;
let ids: Ids;
let parkedSiteId: string;
let otherTenantId: string;
let tenantAName: string;
const lockKey = (siteId: string) => `berth:lock:site:${siteId}`;

async function rest(method: string, path: string, key: string | undefined, body?: unknown): Promise<Outcome> {
  const headers: Record<string, string> = {};
  if (key !== undefined) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(h.berth.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const ok = res.status >= 200 && res.status < 300;
  if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    await res.body?.cancel();
    return { ok, status: res.status, shape: '<stream>', body: '<stream>' };
  }
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { ok, status: res.status, code, shape: `${res.status} ${mask(text)}`, body: text };
}

async function graphql(field: string, key: string | undefined, query: string, variables: Record<string, unknown> = {}): Promise<Outcome> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (key !== undefined) headers.Authorization = `Bearer ${key}`;
  const res = await fetch(`${h.berth.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const text = await res.text();
  const body = JSON.parse(text) as {
    data?: Record<string, unknown> | null;
    errors?: { message: string; extensions?: { code?: string } }[];
  };
  const error = body.errors?.[0];
  return {
    ok: !body.errors && body.data?.[field] !== null && body.data?.[field] !== undefined,
    status: res.status,
    code: error?.extensions?.code,
    shape: mask(JSON.stringify({ errors: body.errors?.map((e) => ({ message: e.message, code: e.extensions?.code })), data: body.data })),
    body: text,
  };
}

const name = () => `m-${randomUUID().slice(0, 8)}`;

// ---- fresh objects for the destructive calls (made with the admin key) ----
async function freshSite(): Promise<Partial<Ids>> {
  const res = await h.http.post('/v1/sites').set(auth(h.admin)).send({ name: name(), tenantId: ids.tenantId });
  if (res.status !== 202) throw new Error(`fresh site: ${res.status} ${JSON.stringify(res.body)}`);
  return { siteId: res.body.site.id };
}
async function freshWebhook(): Promise<Partial<Ids>> {
  const res = await h.http.post('/v1/webhooks').set(auth(h.admin)).send({ url: hookUrl, tenantId: ids.tenantId });
  if (res.status !== 201) throw new Error(`fresh webhook: ${res.status} ${JSON.stringify(res.body)}`);
  return { webhookId: res.body.id };
}
/** A tenant of its own with no site, for the admin's deletion. */
async function freshTenant(): Promise<Partial<Ids>> {
  const res = await h.http
    .post('/v1/tenants')
    .set(auth(h.admin))
    .send({ slug: uniqueSlug('md'), name: 'Doomed', contactEmail: 'ops@doomed.example' });
  if (res.status !== 201) throw new Error(`fresh tenant: ${res.status} ${JSON.stringify(res.body)}`);
  return { tenantId: res.body.id };
}
async function freshDomain(): Promise<Partial<Ids>> {
  const res = await h.http
    .post(`/v1/sites/${ids.actSiteId}/domains`)
    .set(auth(h.admin))
    .send({ hostname: `${name()}.example.com` });
  if (res.status !== 201) throw new Error(`fresh domain: ${res.status} ${JSON.stringify(res.body)}`);
  return { domain: res.body.hostname };
}
async function freshKey(): Promise<Partial<Ids>> {
  const res = await h.http.post(`/v1/tenants/${ids.tenantId}/api-keys`).set(auth(h.admin)).send({ name: 'to-revoke' });
  if (res.status !== 201) throw new Error(`fresh key: ${res.status} ${JSON.stringify(res.body)}`);
  return { apiKeyId: res.body.id };
}
/** A backup of the act site, taken (a pending one cannot be deleted). */
async function freshBackup(): Promise<Partial<Ids>> {
  const res = await h.http.post(`/v1/sites/${ids.actSiteId}/backups`).set(auth(h.admin));
  if (res.status !== 202) throw new Error(`fresh backup: ${res.status} ${JSON.stringify(res.body)}`);
  const job = await waitForJob(h, h.admin, res.body.job.id);
  if (job.status !== 'SUCCEEDED') throw new Error(`fresh backup: ${JSON.stringify(job)}`);
  return { backupId: res.body.backup.id };
}
/** A job that stays QUEUED: the parked site's lock is held by the test. */
async function freshJob(): Promise<Partial<Ids>> {
  const res = await h.http.post(`/v1/sites/${parkedSiteId}/restart`).set(auth(h.admin));
  if (res.status !== 202) throw new Error(`fresh job: ${res.status} ${JSON.stringify(res.body)}`);
  return { queuedJobId: res.body.job.id };
}

const REST_OPS: Op[] = [
  {
    name: 'POST /v1/tenants',
    access: 'admin',
    scoped: false,
    call: (k) => rest('POST', '/v1/tenants', k, { slug: uniqueSlug('mx'), name: 'Matrix', contactEmail: 'ops@matrix.example' }),
  },
  { name: 'GET /v1/tenants', access: 'read', scoped: false, call: (k) => rest('GET', '/v1/tenants?limit=200', k) },
  ...(
    [
      'GET /v1/nodes',
      'GET /v1/nodes/{id}',
      'POST /v1/nodes/{id}/cordon',
      'POST /v1/nodes/{id}/uncordon',
      'POST /v1/nodes/{id}/evacuate',
    ] as const
  ).map((name): Op => {
    const [method, path] = name.split(' ') as ['GET' | 'POST', string];
    return { name, access: 'admin', scoped: false, admits: 'NOT_A_CLUSTER', call: (k) => rest(method, path.replace('{id}', 'n0de1d'), k) };
  }),
  { name: 'GET /v1/tenants/{id}', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/tenants/${i.tenantId}`, k) },
  {
    name: 'PATCH /v1/tenants/{id}',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('PATCH', `/v1/tenants/${i.tenantId}`, k, { name: tenantAName }),
  },
  {
    name: 'DELETE /v1/tenants/{id}',
    access: 'admin',
    scoped: true,
    fresh: freshTenant,
    call: (k, i) => rest('DELETE', `/v1/tenants/${i.tenantId}`, k),
  },
  {
    name: 'POST /v1/tenants/{id}/api-keys',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('POST', `/v1/tenants/${i.tenantId}/api-keys`, k, { name: 'matrix' }),
  },
  {
    name: 'GET /v1/tenants/{id}/api-keys',
    access: 'read',
    scoped: true,
    call: (k, i) => rest('GET', `/v1/tenants/${i.tenantId}/api-keys`, k),
  },
  {
    name: 'DELETE /v1/api-keys/{id}',
    access: 'write',
    scoped: true,
    fresh: freshKey,
    call: (k, i) => rest('DELETE', `/v1/api-keys/${i.apiKeyId}`, k),
  },
  {
    name: 'POST /v1/sites',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('POST', '/v1/sites', k, { name: name(), tenantId: i.tenantId }),
  },
  {
    name: 'GET /v1/sites',
    access: 'read',
    scoped: true,
    hiddenAs: 'empty',
    call: (k, i) => rest('GET', `/v1/sites?tenantId=${i.tenantId}`, k),
  },
  { name: 'GET /v1/sites/{id}', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/sites/${i.siteId}`, k) },
  {
    name: 'PATCH /v1/sites/{id}',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('PATCH', `/v1/sites/${i.actSiteId}`, k, { env: { MATRIX: 'rest' } }),
  },
  {
    name: 'DELETE /v1/sites/{id}',
    access: 'write',
    scoped: true,
    fresh: freshSite,
    call: (k, i) => rest('DELETE', `/v1/sites/${i.siteId}`, k),
  },
  { name: 'POST /v1/sites/{id}/start', access: 'write', scoped: true, call: (k, i) => rest('POST', `/v1/sites/${i.actSiteId}/start`, k) },
  { name: 'POST /v1/sites/{id}/stop', access: 'write', scoped: true, call: (k, i) => rest('POST', `/v1/sites/${i.actSiteId}/stop`, k) },
  {
    name: 'POST /v1/sites/{id}/restart',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('POST', `/v1/sites/${i.actSiteId}/restart`, k),
  },
  {
    name: 'POST /v1/sites/{id}/domains',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('POST', `/v1/sites/${i.actSiteId}/domains`, k, { hostname: `${name()}.example.com` }),
  },
  { name: 'GET /v1/sites/{id}/domains', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/sites/${i.actSiteId}/domains`, k) },
  {
    name: 'POST /v1/sites/{id}/domains/{hostname}/verify',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('POST', `/v1/sites/${i.actSiteId}/domains/${i.domain}/verify`, k),
  },
  {
    name: 'DELETE /v1/sites/{id}/domains/{hostname}',
    access: 'write',
    scoped: true,
    fresh: freshDomain,
    call: (k, i) => rest('DELETE', `/v1/sites/${i.actSiteId}/domains/${i.domain}`, k),
  },
  {
    name: 'POST /v1/sites/{id}/backups',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('POST', `/v1/sites/${i.actSiteId}/backups`, k),
  },
  { name: 'GET /v1/sites/{id}/backups', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/sites/${i.actSiteId}/backups`, k) },
  {
    name: 'POST /v1/sites/{id}/restore',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('POST', `/v1/sites/${i.actSiteId}/restore`, k, { backupId: i.backupId }),
  },
  {
    name: 'POST /v1/sites/{id}/clone',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('POST', `/v1/sites/${i.actSiteId}/clone`, k, { name: name(), backupId: i.backupId }),
  },
  {
    name: 'POST /v1/sites/{id}/push',
    access: 'write',
    scoped: true,
    // Into the parked site: its restore job stays queued, so the shared sites are never being restored.
    call: (k, i) => rest('POST', `/v1/sites/${i.actSiteId}/push`, k, { targetSiteId: parkedSiteId, parts: ['files'] }),
  },
  {
    name: 'GET /v1/sites/{id}/backup-policy',
    access: 'read',
    scoped: true,
    call: (k, i) => rest('GET', `/v1/sites/${i.actSiteId}/backup-policy`, k),
  },
  {
    name: 'PUT /v1/sites/{id}/backup-policy',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('PUT', `/v1/sites/${i.actSiteId}/backup-policy`, k, { intervalHours: 24, keepDaily: 7, keepWeekly: 4 }),
  },
  {
    name: 'GET /v1/backups',
    access: 'read',
    scoped: true,
    hiddenAs: 'empty',
    call: (k, i) => rest('GET', `/v1/backups?tenantId=${i.tenantId}`, k),
  },
  { name: 'GET /v1/backups/{id}', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/backups/${i.backupId}`, k) },
  {
    name: 'GET /v1/backups/{id}/download',
    access: 'read',
    scoped: true,
    call: (k, i) => rest('GET', `/v1/backups/${i.backupId}/download`, k),
  },
  {
    name: 'DELETE /v1/backups/{id}',
    access: 'write',
    scoped: true,
    fresh: freshBackup,
    call: (k, i) => rest('DELETE', `/v1/backups/${i.backupId}`, k),
  },
  { name: 'GET /v1/sites/{id}/events', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/sites/${i.siteId}/events`, k) },
  { name: 'GET /v1/sites/{id}/logs', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/sites/${i.siteId}/logs?tail=5`, k) },
  { name: 'GET /v1/jobs/{id}', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/jobs/${i.jobId}`, k) },
  {
    name: 'POST /v1/jobs/{id}/cancel',
    access: 'write',
    scoped: true,
    fresh: freshJob,
    call: (k, i) => rest('POST', `/v1/jobs/${i.queuedJobId}/cancel`, k),
  },
  { name: 'GET /v1/events', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/events?siteId=${i.siteId}`, k) },
  { name: 'GET /v1/events/stream', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/events/stream?siteId=${i.siteId}`, k) },
  {
    name: 'POST /v1/webhooks',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('POST', '/v1/webhooks', k, { url: hookUrl, tenantId: i.tenantId }),
  },
  { name: 'GET /v1/webhooks', access: 'read', scoped: false, call: (k) => rest('GET', '/v1/webhooks', k) },
  { name: 'GET /v1/webhooks/{id}', access: 'read', scoped: true, call: (k, i) => rest('GET', `/v1/webhooks/${i.webhookId}`, k) },
  {
    name: 'PATCH /v1/webhooks/{id}',
    access: 'write',
    scoped: true,
    call: (k, i) => rest('PATCH', `/v1/webhooks/${i.webhookId}`, k, { description: 'matrix' }),
  },
  {
    name: 'DELETE /v1/webhooks/{id}',
    access: 'write',
    scoped: true,
    fresh: freshWebhook,
    call: (k, i) => rest('DELETE', `/v1/webhooks/${i.webhookId}`, k),
  },
  {
    name: 'GET /v1/webhooks/{id}/deliveries',
    access: 'read',
    scoped: true,
    call: (k, i) => rest('GET', `/v1/webhooks/${i.webhookId}/deliveries`, k),
  },
];

const byId =
  (field: string, type = 'ID!', select = 'id') =>
  (k: string | undefined, id: string) =>
    graphql(field, k, `query($id: ${type}) { ${field}(id: $id) { ${select} } }`, { id });
const mutateId =
  (field: string, select = 'id') =>
  (k: string | undefined, id: string) =>
    graphql(field, k, `mutation($id: ID!) { ${field}(id: $id) { ${select} } }`, { id });

const GRAPHQL_OPS: Op[] = [
  {
    name: 'Query.apiKeys',
    access: 'read',
    scoped: true,
    call: (k, i) => graphql('apiKeys', k, 'query($t: ID!) { apiKeys(tenantId: $t) { id prefix } }', { t: i.tenantId }),
  },
  {
    name: 'Query.events',
    access: 'read',
    scoped: true,
    call: (k, i) => graphql('events', k, 'query($s: ID) { events(siteId: $s) { id type } }', { s: i.siteId }),
  },
  { name: 'Query.backup', access: 'read', scoped: true, call: (k, i) => byId('backup', 'ID!', 'id status')(k, i.backupId) },
  {
    name: 'Mutation.createBackup',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('createBackup', k, 'mutation($s: ID!) { createBackup(siteId: $s) { backup { id } job { id } } }', { s: i.actSiteId }),
  },
  {
    name: 'Mutation.restoreSite',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('restoreSite', k, 'mutation($s: ID!, $b: ID!) { restoreSite(siteId: $s, input: { backupId: $b }) { id } }', {
        s: i.actSiteId,
        b: i.backupId,
      }),
  },
  {
    name: 'Mutation.cloneSite',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('cloneSite', k, 'mutation($s: ID!, $i: CloneInput!) { cloneSite(siteId: $s, input: $i) { site { id } job { id } } }', {
        s: i.actSiteId,
        i: { name: name(), backupId: i.backupId },
      }),
  },
  {
    name: 'Mutation.pushSite',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql(
        'pushSite',
        k,
        'mutation($s: ID!, $t: ID!) { pushSite(siteId: $s, input: { targetSiteId: $t, parts: ["files"] }) { job { id } } }',
        {
          s: i.actSiteId,
          t: parkedSiteId,
        },
      ),
  },
  {
    name: 'Mutation.setBackupPolicy',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql(
        'setBackupPolicy',
        k,
        'mutation($s: ID!) { setBackupPolicy(siteId: $s, input: { intervalHours: 24, keepDaily: 7, keepWeekly: 4 }) { intervalHours } }',
        { s: i.actSiteId },
      ),
  },
  {
    name: 'Mutation.deleteBackup',
    access: 'write',
    scoped: true,
    fresh: freshBackup,
    call: (k, i) => mutateId('deleteBackup', 'id status')(k, i.backupId),
  },
  {
    name: 'Query.backups',
    access: 'read',
    scoped: true,
    hiddenAs: 'empty',
    call: (k, i) => graphql('backups', k, 'query($t: ID) { backups(tenantId: $t) { id expiresAt } }', { t: i.tenantId }),
  },
  { name: 'Query.job', access: 'read', scoped: true, call: (k, i) => byId('job', 'ID!', 'id status')(k, i.jobId) },
  { name: 'Query.me', access: 'read', scoped: false, call: (k) => graphql('me', k, '{ me { keyId role tenant { id } } }') },
  { name: 'Query.site', access: 'read', scoped: true, call: (k, i) => byId('site', 'ID!', 'id status containers { name }')(k, i.siteId) },
  {
    name: 'Query.sites',
    access: 'read',
    scoped: true,
    hiddenAs: 'empty',
    call: (k, i) => graphql('sites', k, 'query($t: ID) { sites(tenantId: $t) { id } }', { t: i.tenantId }),
  },
  { name: 'Query.tenant', access: 'read', scoped: true, call: (k, i) => byId('tenant')(k, i.tenantId) },
  { name: 'Query.tenants', access: 'read', scoped: false, call: (k) => graphql('tenants', k, '{ tenants(limit: 200) { id } }') },
  {
    name: 'Query.nodes',
    access: 'admin',
    scoped: false,
    admits: 'NOT_A_CLUSTER',
    call: (k) => graphql('nodes', k, '{ nodes { id hostname } }'),
  },
  ...(['Query.node', 'Mutation.cordonNode', 'Mutation.uncordonNode', 'Mutation.evacuateNode'] as const).map((name): Op => {
    const [kind, field] = name.split('.') as [string, string];
    const fields = field === 'evacuateNode' ? 'node { id } jobs { id }' : 'id cordoned';
    const doc = `${kind === 'Query' ? 'query' : 'mutation'}($id: ID!) { ${field}(id: $id) { ${fields} } }`;
    return { name, access: 'admin', scoped: false, admits: 'NOT_A_CLUSTER', call: (k) => graphql(field, k, doc, { id: 'n0de1d' }) };
  }),
  { name: 'Query.webhook', access: 'read', scoped: true, call: (k, i) => byId('webhook')(k, i.webhookId) },
  { name: 'Query.webhookDeliveries', access: 'read', scoped: true, call: (k, i) => byId('webhookDeliveries')(k, i.webhookId) },
  { name: 'Query.webhooks', access: 'read', scoped: false, call: (k) => graphql('webhooks', k, '{ webhooks { id } }') },
  {
    name: 'Mutation.cancelJob',
    access: 'write',
    scoped: true,
    fresh: freshJob,
    call: (k, i) => mutateId('cancelJob', 'id status')(k, i.queuedJobId),
  },
  {
    name: 'Mutation.addDomain',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('addDomain', k, 'mutation($s: ID!, $h: String!) { addDomain(siteId: $s, input: { hostname: $h }) { id } }', {
        s: i.actSiteId,
        h: `${name()}.example.com`,
      }),
  },
  {
    name: 'Mutation.verifyDomain',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('verifyDomain', k, 'mutation($s: ID!, $h: String!) { verifyDomain(siteId: $s, hostname: $h) { id status } }', {
        s: i.actSiteId,
        h: i.domain,
      }),
  },
  {
    name: 'Mutation.removeDomain',
    access: 'write',
    scoped: true,
    fresh: freshDomain,
    call: (k, i) =>
      graphql('removeDomain', k, 'mutation($s: ID!, $h: String!) { removeDomain(siteId: $s, hostname: $h) { id } }', {
        s: i.actSiteId,
        h: i.domain,
      }),
  },
  {
    name: 'Mutation.createApiKey',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('createApiKey', k, 'mutation($t: ID!) { createApiKey(tenantId: $t, input: { name: "matrix" }) { id } }', { t: i.tenantId }),
  },
  {
    name: 'Mutation.createSite',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('createSite', k, 'mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } job { id } } }', {
        i: { name: name(), tenantId: i.tenantId },
      }),
  },
  {
    name: 'Mutation.createTenant',
    access: 'admin',
    scoped: false,
    call: (k) =>
      graphql('createTenant', k, 'mutation($i: CreateTenantInput!) { createTenant(input: $i) { id } }', {
        i: { slug: uniqueSlug('mx'), name: 'Matrix', contactEmail: 'ops@matrix.example' },
      }),
  },
  {
    name: 'Mutation.createWebhook',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('createWebhook', k, 'mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { id } }', {
        i: { url: hookUrl, tenantId: i.tenantId },
      }),
  },
  { name: 'Mutation.deleteSite', access: 'write', scoped: true, fresh: freshSite, call: (k, i) => mutateId('deleteSite')(k, i.siteId) },
  {
    name: 'Mutation.deleteTenant',
    access: 'admin',
    scoped: true,
    fresh: freshTenant,
    call: (k, i) => mutateId('deleteTenant', 'id kind')(k, i.tenantId),
  },
  {
    name: 'Mutation.deleteWebhook',
    access: 'write',
    scoped: true,
    fresh: freshWebhook,
    call: (k, i) => mutateId('deleteWebhook')(k, i.webhookId),
  },
  { name: 'Mutation.restartSite', access: 'write', scoped: true, call: (k, i) => mutateId('restartSite')(k, i.actSiteId) },
  {
    name: 'Mutation.revokeApiKey',
    access: 'write',
    scoped: true,
    fresh: freshKey,
    call: (k, i) => mutateId('revokeApiKey', 'id revokedAt')(k, i.apiKeyId),
  },
  { name: 'Mutation.startSite', access: 'write', scoped: true, call: (k, i) => mutateId('startSite')(k, i.actSiteId) },
  { name: 'Mutation.stopSite', access: 'write', scoped: true, call: (k, i) => mutateId('stopSite')(k, i.actSiteId) },
  {
    name: 'Mutation.updateSite',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('updateSite', k, 'mutation($id: ID!) { updateSite(id: $id, input: { env: { MATRIX: "gql" } }) { id } }', { id: i.actSiteId }),
  },
  {
    name: 'Mutation.updateTenant',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('updateTenant', k, 'mutation($id: ID!, $n: String!) { updateTenant(id: $id, input: { name: $n }) { id } }', {
        id: i.tenantId,
        n: tenantAName,
      }),
  },
  {
    name: 'Mutation.updateWebhook',
    access: 'write',
    scoped: true,
    call: (k, i) =>
      graphql('updateWebhook', k, 'mutation($id: ID!) { updateWebhook(id: $id, input: { description: "matrix" }) { id } }', {
        id: i.webhookId,
      }),
  },
];

const SUBSCRIPTIONS = ['Subscription.jobUpdated', 'Subscription.siteEvents', 'Subscription.siteUpdated'];
// GET /metrics needs the metrics token (or a loopback caller), not an API key: test/metrics covers it.
const PUBLIC_ROUTES = ['GET /healthz', 'GET /readyz', 'GET /v1/edge/ask', 'GET /metrics'];

function expectation(op: { access: Access; scoped: boolean }, who: Who): Expect {
  switch (who) {
    case 'none':
    case 'malformed':
    case 'revoked':
      return 'unauthenticated';
    case 'other':
      return op.access === 'admin' ? 'forbidden' : op.scoped ? 'hidden' : 'ok';
    case 'readonly':
      return op.access === 'read' ? 'ok' : 'forbidden';
    case 'owner':
      return op.access === 'admin' ? 'forbidden' : 'ok';
    case 'admin':
      return 'ok';
  }
}

const randomIds = (): Ids => ({
  tenantId: randomUUID(),
  siteId: randomUUID(),
  actSiteId: randomUUID(),
  jobId: randomUUID(),
  queuedJobId: randomUUID(),
  webhookId: randomUUID(),
  apiKeyId: randomUUID(),
  // The same hostname on a missing site: only the site differs between hidden and missing.
  domain: ids.domain,
  backupId: randomUUID(),
});
const aIds = () => [ids.tenantId, ids.siteId, ids.actSiteId, ids.webhookId, parkedSiteId];
const isRest = (op: Op) => !op.name.includes('.');

/** Returns what is wrong with one call, or undefined. */
async function check(op: Op, who: Who): Promise<string | undefined> {
  const want = expectation(op, who);
  let target = ids;
  if (op.fresh && want === 'ok' && (who === 'owner' || who === 'admin')) target = { ...ids, ...(await op.fresh(who)) };
  const got = await op.call(keys[who], target);
  const where = `${op.name} as ${who}: expected ${want}, got ${got.body.slice(0, 300)}`;
  if (want === 'ok') {
    if (!got.ok && !(op.admits && got.code === op.admits)) return where;
    // Lists and "me" seen by another tenant must not show anything of tenant A.
    if (who === 'other' && aIds().some((id) => got.body.includes(id))) return `${where} (shows tenant A's objects)`;
    return undefined;
  }
  if (want === 'unauthenticated') {
    if (got.code !== 'UNAUTHENTICATED' || (isRest(op) && got.status !== 401)) return where;
    return undefined;
  }
  if (want === 'forbidden') {
    if (got.code !== 'FORBIDDEN' || (isRest(op) && got.status !== 403)) return where;
    return undefined;
  }
  // hidden: exactly what a random id answers, and that answer is "not found" (or empty).
  const missing = await op.call(keys[who], randomIds());
  if (got.shape !== missing.shape) return `${where}; a random id answers ${missing.body.slice(0, 300)}`;
  if (op.hiddenAs === 'empty') {
    if (!got.ok || aIds().some((id) => got.body.includes(id))) return `${where} (expected an empty answer)`;
    return undefined;
  }
  if (!/NOT_FOUND$/.test(got.code ?? '') || (isRest(op) && got.status !== 404)) return where;
  return undefined;
}

beforeAll(async () => {
  hookUrl = await receiver.start();
  h = await startHarness();
  redis = testRedis();
  const a = await createTenant(h, uniqueSlug('ma'), { maxSites: 50 });
  const b = await createTenant(h, uniqueSlug('mb'));
  otherTenantId = b.tenant.id;
  tenantAName = `Tenant ${a.tenant.slug}`;
  const readonly = await h.http.post(`/v1/tenants/${a.tenant.id}/api-keys`).set(auth(h.admin)).send({ role: 'TENANT_READONLY' });
  const revoked = await h.http.post(`/v1/tenants/${a.tenant.id}/api-keys`).set(auth(h.admin)).send({});
  const victimKey = await h.http.post(`/v1/tenants/${a.tenant.id}/api-keys`).set(auth(h.admin)).send({ name: 'victim' });
  expect((await h.http.delete(`/v1/api-keys/${revoked.body.id}`).set(auth(h.admin))).status).toBe(200);
  Object.assign(keys, {
    none: undefined,
    malformed: 'not-a-berth-key',
    revoked: revoked.body.key,
    other: b.key,
    owner: a.key,
    readonly: readonly.body.key,
    admin: h.admin,
  });

  const [main, act, parked] = await Promise.all([
    provision(h, a.key, { name: 'main' }),
    provision(h, a.key, { name: 'act' }),
    provision(h, a.key, { name: 'parked' }),
  ]);
  parkedSiteId = parked.id;
  const webhook = await h.http.post('/v1/webhooks').set(auth(a.key)).send({ url: hookUrl, events: [] });
  const mainJob = (await h.db.query('SELECT id FROM "Job" WHERE "siteId" = $1', [main.id])).rows[0].id as string;
  // The parked site's jobs stay queued while the test holds the lock its worker needs.
  expect(await redis.set(lockKey(parked.id), 'held-by-test', 'PX', 600_000, 'NX')).toBe('OK');
  ids = {
    tenantId: a.tenant.id,
    siteId: main.id,
    actSiteId: act.id,
    jobId: mainJob,
    queuedJobId: '',
    webhookId: webhook.body.id,
    apiKeyId: victimKey.body.id,
    domain: '',
    backupId: '',
  };
  ids.domain = (await freshDomain()).domain!;
  ids.backupId = (await freshBackup()).backupId!;
  ids.queuedJobId = (await freshJob()).queuedJobId!;
  // Some deliveries exist, so the deliveries list has something to hide.
  await eventually(
    async () => (await h.db.query('SELECT 1 FROM "WebhookDelivery" WHERE "webhookId" = $1', [webhook.body.id])).rowCount || undefined,
    'a webhook delivery',
  );
});

afterAll(async () => {
  await redis?.del(lockKey(parkedSiteId));
  redis?.disconnect();
  await h?.stop();
  await receiver.stop();
  await removeSuiteObjects();
});

describe('the matrix covers the whole API', () => {
  it('every REST route of the OpenAPI document and every GraphQL operation is in the matrix', async () => {
    const doc = await h.http.get('/docs-json');
    expect(doc.status).toBe(200);
    const routes = Object.entries(doc.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods)
        .filter((m) => ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    const intro = await h.http.post('/graphql').send({
      query: '{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }',
    });
    const schema = intro.body.data.__schema;
    const operations = [
      ...schema.queryType.fields.map((f: { name: string }) => `Query.${f.name}`),
      ...(schema.mutationType?.fields ?? []).map((f: { name: string }) => `Mutation.${f.name}`),
      ...(schema.subscriptionType?.fields ?? []).map((f: { name: string }) => `Subscription.${f.name}`),
    ];
    const found = new Set([...routes, ...operations]);
    const covered = new Set([...REST_OPS, ...GRAPHQL_OPS].map((o) => o.name).concat(SUBSCRIPTIONS, PUBLIC_ROUTES));
    const uncovered = [...found].filter((n) => !covered.has(n)).sort();
    const stale = [...covered].filter((n) => !found.has(n)).sort();
    expect({ uncovered, stale }).toEqual({ uncovered: [], stale: [] });
    expect(routes.length).toBeGreaterThanOrEqual(29);
    expect(operations.length).toBeGreaterThanOrEqual(28);
  });

  it("the health routes and the edge's ask endpoint are the public exceptions", async () => {
    for (const path of ['/healthz', '/readyz']) expect((await h.http.get(path)).status).toBe(200);
    // The edge asks without a key; the answer for a name Berth does not route is no, not "who are you".
    expect((await h.http.get('/v1/edge/ask?domain=nobody.example.com')).status).toBe(404);
    // ...and nothing else answers without a key (the matrix checks each route).
    expect((await h.http.get('/v1/tenants')).status).toBe(401);
  });
});

describe.each([
  ['REST', REST_OPS],
  ['GraphQL', GRAPHQL_OPS],
])('%s: every caller on every operation', (_kind, ops) => {
  it.each(ops.map((op) => [op.name, op] as const))('%s', async (_name, op) => {
    const problems: string[] = [];
    for (const who of CALLERS) {
      const problem = await check(op, who);
      if (problem) problems.push(problem);
    }
    expect(problems).toEqual([]);
  });
});

describe('what the refused calls left alone', () => {
  it("tenant A's shared objects survived every refused call", async () => {
    const site = await h.http.get(`/v1/sites/${ids.siteId}`).set(auth(h.admin));
    expect(site.body.status).toBe('RUNNING');
    expect((await h.http.get(`/v1/webhooks/${ids.webhookId}`).set(auth(h.admin))).status).toBe(200);
    const { rows: keyRows } = await h.db.query('SELECT "revokedAt" FROM "ApiKey" WHERE id = $1', [ids.apiKeyId]);
    expect(keyRows[0].revokedAt).toBeNull();
    expect((await h.http.get(`/v1/jobs/${ids.queuedJobId}`).set(auth(h.admin))).body.status).toBe('QUEUED');
    const { rows: tenants } = await h.db.query('SELECT name FROM "Tenant" WHERE id = $1', [ids.tenantId]);
    expect(tenants[0].name).toBe(tenantAName);
    // Tenant B gained nothing from its attempts on tenant A's objects: no site, no webhook.
    const { rows: bSites } = await h.db.query('SELECT count(*)::int AS n FROM "Site" WHERE "tenantId" = $1', [otherTenantId]);
    expect(bSites[0].n).toBe(0);
    const { rows: bHooks } = await h.db.query('SELECT count(*)::int AS n FROM "Webhook" WHERE "tenantId" = $1', [otherTenantId]);
    expect(bHooks[0].n).toBe(0);
  });
});

describe('GraphQL subscriptions', () => {
  type SubOutcome = { kind: 'data' } | { kind: 'error'; code?: string; shape: string } | { kind: 'closed'; code: number; reason: string };

  /** Subscribes and resolves with the first thing that happens. */
  function first(client: Client, query: string, timeoutMs = 45_000): Promise<SubOutcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ kind: 'error', shape: 'timed out' }), timeoutMs);
      const done = (o: SubOutcome) => {
        clearTimeout(timer);
        stop();
        resolve(o);
      };
      const stop = client.subscribe<Record<string, unknown>>(
        { query },
        {
          next: (v) => {
            if (v.errors)
              done({ kind: 'error', code: v.errors[0].extensions?.code as string | undefined, shape: mask(v.errors[0].message) });
            else if (v.data && Object.values(v.data).every((x) => x !== null)) done({ kind: 'data' });
            else done({ kind: 'error', shape: JSON.stringify(v) });
          },
          error: (e) => {
            if (Array.isArray(e))
              done({ kind: 'error', code: e[0]?.extensions?.code as string | undefined, shape: mask(String(e[0]?.message)) });
            else if (e && typeof e === 'object' && 'code' in e)
              done({ kind: 'closed', code: (e as { code: number }).code, reason: String((e as { reason?: string }).reason) });
            else done({ kind: 'error', shape: String(e) });
          },
          complete: () => done({ kind: 'error', shape: 'completed without data' }),
        },
      );
    });
  }

  const numsub = async (channel: string) => Number(((await redis.pubsub('NUMSUB', channel)) as [string, number])[1]);
  /**
   * Waits until Berth holds at least `want[channel]` Redis subscriptions on each channel:
   * a GraphQL subscription is in place once its resolver has subscribed, so anything
   * published after that reaches it. (graphql-ws does not acknowledge a subscribe.)
   */
  async function subscribed(want: Record<string, number>) {
    await eventually(
      async () => {
        for (const [channel, n] of Object.entries(want)) if ((await numsub(channel)) < n) return undefined;
        return true;
      },
      `subscriptions in place: ${JSON.stringify(want)}`,
    );
  }

  it('jobUpdated, siteEvents and siteUpdated: refused without a valid key, hidden from another tenant, delivered to the owner, read-only key and admin', async () => {
    const sub = await provision(h, keys.owner!, { name: 'sub' });
    // Hold the site's lock so that the job is still queued when the subscriptions start.
    await eventually(
      async () => (await redis.set(lockKey(sub.id), 'held-by-test', 'PX', 120_000, 'NX')) === 'OK' || undefined,
      'the site lock',
    );
    const clients = Object.fromEntries(CALLERS.map((w) => [w, wsClient(h, keys[w])])) as Record<Who, Client>;
    const randomClient = wsClient(h, keys.other);
    try {
      const siteQueries = (id: string) => ({
        'Subscription.siteEvents': `subscription { siteEvents(siteId: "${id}") { id type siteId } }`,
        'Subscription.siteUpdated': `subscription { siteUpdated(id: "${id}") { id status } }`,
      });
      const baseline = { all: await numsub('berth:events:all'), tenant: await numsub(`berth:events:tenant:${ids.tenantId}`) };
      const pending: { op: string; who: Who; outcome: Promise<SubOutcome>; missing?: Promise<SubOutcome> }[] = [];
      for (const who of CALLERS) {
        for (const [op, q] of Object.entries(siteQueries(sub.id))) {
          pending.push({
            op,
            who,
            outcome: first(clients[who], q),
            missing:
              who === 'other' ? first(randomClient, Object.entries(siteQueries(randomUUID())).find(([o]) => o === op)![1]) : undefined,
          });
        }
      }
      // Owner, read-only key and admin are let in: two on the tenant's event channel, one more
      // on the channel of all events (the admin's). (siteUpdated and jobUpdated answer with
      // the current state as soon as they are subscribed, and their first answer ends them.)
      await subscribed({
        [`berth:events:tenant:${ids.tenantId}`]: baseline.tenant + 2,
        'berth:events:all': baseline.all + 1,
      });
      const restart = await h.http.post(`/v1/sites/${sub.id}/restart`).set(auth(keys.owner!));
      expect(restart.status).toBe(202);
      const jobId = restart.body.job.id as string;
      for (const who of CALLERS) {
        pending.push({
          op: 'Subscription.jobUpdated',
          who,
          outcome: first(clients[who], `subscription { jobUpdated(id: "${jobId}") { id status } }`),
          missing: who === 'other' ? first(randomClient, `subscription { jobUpdated(id: "${randomUUID()}") { id status } }`) : undefined,
        });
      }
      await redis.del(lockKey(sub.id)); // the job runs: job and site updates are published

      const problems: string[] = [];
      for (const p of pending) {
        const want = expectation({ access: 'read', scoped: true }, p.who);
        const got = await p.outcome;
        const where = `${p.op} as ${p.who}: expected ${want}, got ${JSON.stringify(got)}`;
        if (want === 'ok' && got.kind !== 'data') problems.push(where);
        if (want === 'unauthenticated' && !(got.kind === 'closed' && got.code === 4401 && /UNAUTHENTICATED/.test(got.reason)))
          problems.push(where);
        if (want === 'hidden') {
          const missing = await p.missing!;
          if (got.kind !== 'error' || !/NOT_FOUND$/.test(got.code ?? '') || JSON.stringify(got) !== JSON.stringify(missing))
            problems.push(`${where}; a random id answers ${JSON.stringify(missing)}`);
        }
      }
      expect(problems).toEqual([]);
      expect(new Set(pending.map((p) => p.op))).toEqual(new Set(SUBSCRIPTIONS));
    } finally {
      await redis.del(lockKey(sub.id));
      await Promise.all([...Object.values(clients), randomClient].map((c) => c.dispose()));
    }
  });
});
