/**
 * Webhooks cannot be aimed inside: with Berth's default policy, a tenant cannot register a
 * webhook to loopback, private, link-local or reserved addresses, and a delivery whose
 * destination is (or resolves to) one is refused as the connection is made, once, without
 * retries, and reported on the delivery. The test receiver on 127.0.0.1 gets nothing.
 */
import { auth, createTenant, gql, startHarness, type Harness } from './harness';
import { eventually, TestWebhookReceiver } from './receivers';
import { removeSuiteObjects } from './suite-helpers';

let h: Harness;
let t: Awaited<ReturnType<typeof createTenant>>;
const receiver = new TestWebhookReceiver();
let hookUrl: string;

beforeAll(async () => {
  hookUrl = await receiver.start();
  h = await startHarness({ BERTH_WEBHOOK_ALLOWED_NETWORKS: '', BERTH_NOTIFY_ATTEMPTS: '5', BERTH_NOTIFY_BACKOFF_MS: '200' });
  t = await createTenant(h);
});
afterAll(async () => {
  await h.stop();
  await receiver.stop();
  await removeSuiteObjects();
});

const hookCount = async () =>
  (await h.db.query('SELECT count(*)::int AS n FROM "Webhook" WHERE "tenantId" = $1', [t.tenant.id])).rows[0].n as number;

describe('webhook destinations', () => {
  const port = () => new URL(hookUrl).port;
  const inside = () => [
    hookUrl, // the receiver, on 127.0.0.1
    `http://localhost:${port()}/hooks`,
    `http://[::1]:${port()}/hooks`,
    `http://[::ffff:127.0.0.1]:${port()}/hooks`,
    `http://2130706433:${port()}/hooks`, // 127.0.0.1 as a number
    'http://169.254.169.254/latest/meta-data/',
    'http://10.64.0.2/', // a tenant network
    'http://172.17.0.1:2375/containers/json', // Docker's bridge gateway
    'http://192.168.1.1/',
    'http://0.0.0.0:5432/',
    'http://[fd00::1]/',
  ];

  it('refuses to register one inside, over REST and GraphQL, and stores nothing', async () => {
    for (const url of inside()) {
      const rest = await h.http.post('/v1/webhooks').set(auth(t.key)).send({ url });
      expect({ url, status: rest.status, code: rest.body.code }).toEqual({ url, status: 400, code: 'VALIDATION_FAILED' });
      // Some spellings already fail the URL check; the others meet the destination policy.
      expect({ url, detail: rest.body.detail }).toEqual({
        url,
        detail: expect.stringMatching(/not a public address|local machine|must be an http/),
      });
      const g = await gql(h, t.key, 'mutation($u: String!) { createWebhook(input: { url: $u }) { id } }', { u: url });
      expect({ url, code: g.errors?.[0]?.extensions?.code }).toEqual({ url, code: 'VALIDATION_FAILED' });
    }
    expect(await hookCount()).toBe(0);
    for (const url of [
      hookUrl,
      'http://169.254.169.254/latest/meta-data/',
      `http://localhost:${port()}/hooks`,
      `http://[::1]:${port()}/hooks`,
    ]) {
      expect((await h.http.post('/v1/webhooks').set(auth(t.key)).send({ url })).body.detail).toMatch(
        /^url: .*(not a public address|local machine)/,
      );
    }
  });

  it('refuses to move a registered one inside', async () => {
    const hook = await h.http.post('/v1/webhooks').set(auth(t.key)).send({ url: 'https://hooks.example.com/berth' });
    expect(hook.status).toBe(201);
    const moved = await h.http.patch(`/v1/webhooks/${hook.body.id}`).set(auth(t.key)).send({ url: 'http://169.254.169.254/' });
    expect(moved.status).toBe(400);
    expect((await h.http.get(`/v1/webhooks/${hook.body.id}`).set(auth(t.key))).body.url).toBe('https://hooks.example.com/berth');
    expect((await h.http.delete(`/v1/webhooks/${hook.body.id}`).set(auth(t.key))).status).toBeLessThan(300);
  });

  it('refuses a delivery to an address inside, or to a name that resolves inside, once and without retries', async () => {
    // Rows from before the policy (or an operator's hand): the delivery itself must refuse them.
    const urls = [hookUrl, `http://localhost:${port()}/hooks`];
    const ids: string[] = [];
    for (const url of urls) {
      const hook = await h.http.post('/v1/webhooks').set(auth(t.key)).send({ url: 'https://hooks.example.com/berth' });
      expect(hook.status).toBe(201);
      await h.db.query('UPDATE "Webhook" SET url = $1 WHERE id = $2', [url, hook.body.id]);
      ids.push(hook.body.id);
    }
    // Any event of the tenant is delivered to its webhooks: a new API key makes one.
    const key = await h.http.post(`/v1/tenants/${t.tenant.id}/api-keys`).set(auth(h.admin)).send({});
    expect(key.status).toBe(201);
    const {
      rows: [event],
    } = await h.db.query(`SELECT id FROM "Event" WHERE type = 'api_key.created' AND data->>'apiKeyId' = $1`, [key.body.id]);
    for (const [i, id] of ids.entries()) {
      const d = await eventually(async () => {
        const list = (await h.http.get(`/v1/webhooks/${id}/deliveries`).set(auth(t.key))).body as {
          eventId: string;
          status: string;
          attempts: number;
          error: string;
        }[];
        return list.find((x) => x.eventId === event.id && x.status === 'FAILED');
      }, `the refused delivery to ${urls[i]}`);
      expect(d.attempts).toBe(1);
      expect(d.error).toMatch(
        i === 0 ? /^127\.0\.0\.1 is not a public address/ : /^localhost resolves to an address that is not a public address/,
      );
    }
    await new Promise((r) => setTimeout(r, 1500)); // several backoffs: still one attempt each
    const { rows } = await h.db.query('SELECT attempts FROM "WebhookDelivery" WHERE "webhookId" = ANY($1::uuid[]) AND "eventId" = $2', [
      ids,
      event.id,
    ]);
    expect(rows.map((r) => r.attempts)).toEqual([1, 1]);
    expect(receiver.hooks).toEqual([]);
  });
});
