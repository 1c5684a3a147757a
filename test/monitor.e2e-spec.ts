import http from 'node:http';
import { verify } from '../src/notifications/webhook-signature';
import { auth, createTenant, exec, gql, startHarness, waitForJob, type Harness } from './harness';
import { eventually, TestSmtpServer, TestWebhookReceiver } from './receivers';
import { testNames } from './env';
import { removeSuiteObjects, siteContainer } from './suite-helpers';

const FAST = {
  BERTH_PROBE_INTERVAL_MS: '500',
  // Not 1000: under the full suite's load on 2 cores, a probe through the edge twice took
  // over a second right after an update (CI runs of 9d74bdf and c08fcad) while the site
  // answered on its own port. A hung upstream would outlast any timeout; 2.5 s tells load
  // from a hang, and a stopped httpd (the positive control below) is still DOWN.
  BERTH_PROBE_TIMEOUT_MS: '2500',
  BERTH_PROBE_FAILURES: '2',
  BERTH_NOTIFY_BACKOFF_MS: '200',
  BERTH_NOTIFY_ATTEMPTS: '25',
};

type Tenant = Awaited<ReturnType<typeof createTenant>>;
interface EventBody {
  id: string;
  type: string;
  siteId: string | null;
  tenantId: string | null;
  message: string;
  data: Record<string, unknown>;
}

async function provision(h: Harness, t: Tenant, body: Record<string, unknown>) {
  const res = await h.http.post('/v1/sites').set(auth(t.key)).send(body);
  expect(res.status).toBe(202);
  expect((await waitForJob(h, t.key, res.body.job.id)).status).toBe('SUCCEEDED');
  return res.body.site as { id: string; name: string };
}

async function siteEvents(h: Harness, key: string, siteId: string, type?: string): Promise<EventBody[]> {
  const res = await h.http.get(`/v1/events?siteId=${siteId}${type ? `&type=${type}` : ''}&limit=200`).set(auth(key));
  expect(res.status).toBe(200);
  return res.body;
}

/** HTTP requests the stub's httpd (-vv) logged since `since` from outside its container. */
async function requestsFromOutside(h: Harness, container: string, since: number): Promise<number> {
  const raw = (await h.docker
    .getContainer(container)
    .logs({ stdout: true, stderr: true, timestamps: true, since: Math.floor(since / 1000) })) as unknown as Buffer;
  const lines = [...raw.toString('utf8').matchAll(/(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?)\d*Z \[([^\]]+)\]:\d+: url:/g)];
  return lines.filter(([, at, from]) => Date.parse(`${at}Z`) >= since && !from.endsWith('127.0.0.1')).length;
}

const waitForEvent = (h: Harness, key: string, siteId: string, type: string, count = 1) =>
  eventually(async () => {
    const events = await siteEvents(h, key, siteId, type);
    return events.length >= count ? events : undefined;
  }, `${count} ${type} event(s)`);

describe('with an SMTP server and a webhook receiver', () => {
  let h: Harness;
  const smtp = new TestSmtpServer();
  const receiver = new TestWebhookReceiver();
  let smtpPort: number;
  let hookUrl: string;
  let a: Tenant;
  let b: Tenant;

  beforeAll(async () => {
    smtpPort = await smtp.start();
    hookUrl = await receiver.start();
    h = await startHarness({
      ...FAST,
      BERTH_SMTP_HOST: '127.0.0.1',
      BERTH_SMTP_PORT: String(smtpPort),
      BERTH_SMTP_FROM: 'Berth <berth@test.example>',
    });
    a = await createTenant(h);
    b = await createTenant(h);
  });
  afterAll(async () => {
    await h.stop();
    await smtp.stop();
    await receiver.stop();
    await removeSuiteObjects();
  });

  it('a killed site with restart policy "no" is reported down by event, email and signed webhook, and up again after start', async () => {
    const hook = await h.http
      .post('/v1/webhooks')
      .set(auth(a.key))
      .send({ url: hookUrl, events: ['site.down', 'site.up'] });
    expect(hook.status).toBe(201);
    const secret = hook.body.secret as string;
    expect(secret).toMatch(/^whsec_/);
    const site = await provision(h, a, { name: 'watched', restartPolicy: 'no' });
    const { body: running } = await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key));
    expect(running.health).toBe('UP');

    await h.docker.getContainer(testNames.wpContainer(a.tenant.slug, 'watched')).kill();
    const [down] = await waitForEvent(h, a.key, site.id, 'site.down');
    expect(down.message).toMatch(/died|failed/);
    expect(down.data).toMatchObject({ siteName: 'watched', url: running.url });
    expect((await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key))).body.health).toBe('DOWN');

    const mail = await eventually(() => smtp.mails.find((m) => m.raw.includes('watched') && m.raw.includes('DOWN')), 'the site.down email');
    expect(mail.to).toEqual([`ops@${a.tenant.slug}.example`]);
    expect(mail.raw).toContain(running.url);
    const received = await eventually(() => receiver.hooks.find((r) => JSON.parse(r.body).id === down.id), 'the site.down webhook');
    expect(received.headers['berth-event']).toBe('site.down');
    const ts = Number(received.headers['berth-timestamp']);
    expect(verify(secret, ts, received.body, received.headers['berth-signature'] as string)).toBe(true);
    expect(verify('wrong-secret-0123456789', ts, received.body, received.headers['berth-signature'] as string)).toBe(false);

    const start = await h.http.post(`/v1/sites/${site.id}/start`).set(auth(a.key));
    expect((await waitForJob(h, a.key, start.body.job.id)).status).toBe('SUCCEEDED');
    await waitForEvent(h, a.key, site.id, 'site.up');
    await eventually(() => smtp.mails.find((m) => m.raw.includes('watched') && m.raw.includes('UP again')), 'the site.up email');
    expect(smtp.mails.filter((m) => m.raw.includes('Site watched is DOWN'))).toHaveLength(1);
    expect((await siteEvents(h, a.key, site.id, 'site.down')).length).toBe(1);

    const deliveries = await h.http.get(`/v1/webhooks/${hook.body.id}/deliveries`).set(auth(a.key));
    expect(deliveries.status).toBe(200);
    expect(deliveries.body.map((d: { eventType: string; status: string }) => [d.eventType, d.status])).toEqual(
      expect.arrayContaining([
        ['site.down', 'SUCCEEDED'],
        ['site.up', 'SUCCEEDED'],
      ]),
    );
  });

  it('a crashed site with restart policy "always" is restarted by Docker, and Berth reports it', async () => {
    const site = await provision(h, a, { name: 'phoenix', restartPolicy: 'always' });
    // `docker kill` counts as a manual stop, which restart policies leave alone; a crash is
    // the main process dying, so kill it from the host.
    const { State } = await h.docker.getContainer(testNames.wpContainer(a.tenant.slug, 'phoenix')).inspect();
    process.kill(State.Pid, 'SIGKILL');
    const [restarted] = await waitForEvent(h, a.key, site.id, 'site.restarted');
    expect(restarted.data.restartCount).toBeGreaterThanOrEqual(1);
    const body = (await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key))).body;
    expect(body.restartCount).toBeGreaterThanOrEqual(1);
    expect(body.containers.find((c: { role: string }) => c.role === 'wordpress').state).toBe('running');
    const g = await gql<{ site: { restartCount: number } }>(h, a.key, 'query($id: ID!) { site(id: $id) { restartCount } }', {
      id: site.id,
    });
    expect(g.data?.site.restartCount).toBeGreaterThanOrEqual(1);
  });

  it('a restart or update through the API is not reported as an outage, while probes still catch a real one', async () => {
    const site = await provision(h, a, { name: 'calm', restartPolicy: 'no' });
    const restart = await h.http.post(`/v1/sites/${site.id}/restart`).set(auth(a.key));
    expect((await waitForJob(h, a.key, restart.body.job.id)).status).toBe('SUCCEEDED');
    const update = await h.http
      .patch(`/v1/sites/${site.id}`)
      .set(auth(a.key))
      .send({ env: { CALM: '1' } });
    expect((await waitForJob(h, a.key, update.body.job.id)).status).toBe('SUCCEEDED');
    // Probing goes on after both jobs: the site's httpd logs three probes (requests from
    // outside the container; its own health check asks from 127.0.0.1). DOWN takes 2 failures.
    const jobsDone = Date.now();
    const container = await siteContainer(h, site.id);
    await eventually(
      async () => ((await requestsFromOutside(h, container, jobsDone)) >= 3 ? true : undefined),
      'three probes after the jobs',
      30_000,
      250,
    );
    expect(await siteEvents(h, a.key, site.id, 'site.down')).toEqual([]);
    expect((await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key))).body.health).toBe('UP');

    // Positive control: those probes do see an outage that only HTTP shows. A stopped (SIGSTOP)
    // httpd leaves the container running but answers nothing; after SIGCONT it answers again.
    expect((await exec(h.docker, container, ['sh', '-c', 'kill -STOP $(pidof httpd)'])).code).toBe(0);
    const [down] = await waitForEvent(h, a.key, site.id, 'site.down');
    expect(down.message).toMatch(/probe\(s\) failed in a row/);
    expect((await h.docker.getContainer(container).inspect()).State.Status).toBe('running');
    expect((await exec(h.docker, container, ['sh', '-c', 'kill -CONT $(pidof httpd)'])).code).toBe(0);
    const [up] = await waitForEvent(h, a.key, site.id, 'site.up');
    expect(up.message).toMatch(/answered HTTP/);
    expect((await h.http.get(`/v1/sites/${site.id}`).set(auth(a.key))).body.health).toBe('UP');
  });

  it('an email is delivered once the SMTP server comes back', async () => {
    const site = await provision(h, a, { name: 'patient', restartPolicy: 'no' });
    await smtp.stop();
    await h.docker.getContainer(testNames.wpContainer(a.tenant.slug, 'patient')).kill();
    const [down] = await waitForEvent(h, a.key, site.id, 'site.down');
    const pending = await eventually(async () => {
      const { rows } = await h.db.query('SELECT status, attempts, error FROM "EmailNotification" WHERE "eventId" = $1', [down.id]);
      return rows[0]?.attempts > 0 ? rows[0] : undefined;
    }, 'a failed delivery attempt');
    expect(pending.status).toBe('PENDING');
    expect(pending.error).toMatch(/ECONNREFUSED|connect/i);
    await smtp.start(smtpPort);
    await eventually(() => smtp.mails.find((m) => m.raw.includes('Site patient is DOWN')), 'the delayed email', 90_000);
    // The row is marked SENT once the server has accepted the mail, a moment after it arrived.
    const sent = await eventually(
      async () => {
        const { rows } = await h.db.query('SELECT status FROM "EmailNotification" WHERE "eventId" = $1', [down.id]);
        return rows[0]?.status === 'PENDING' ? undefined : rows[0];
      },
      'the notification to leave PENDING',
      30_000,
    );
    expect(sent.status).toBe('SENT');
  });

  it('a webhook that fails is retried with backoff until it succeeds', async () => {
    const hook = await h.http.post('/v1/webhooks').set(auth(b.key)).send({ url: hookUrl, secret: 'b-secret-0123456789abcdef' });
    expect(hook.body.secret).toBeUndefined();
    receiver.failNext = 2;
    const site = await provision(h, b, { name: 'hooked' });
    const created = (await siteEvents(h, b.key, site.id, 'site.created'))[0];
    const delivered = await eventually(() => receiver.hooks.find((r) => JSON.parse(r.body).id === created.id), 'the retried webhook');
    expect(
      verify(
        'b-secret-0123456789abcdef',
        Number(delivered.headers['berth-timestamp']),
        delivered.body,
        delivered.headers['berth-signature'] as string,
      ),
    ).toBe(true);
    const deliveries = (await h.http.get(`/v1/webhooks/${hook.body.id}/deliveries?limit=200`).set(auth(b.key))).body;
    const d = deliveries.find((x: { eventId: string }) => x.eventId === created.id);
    expect(d).toMatchObject({ status: 'SUCCEEDED', responseStatus: 204 });
    expect(d.attempts).toBeGreaterThanOrEqual(1);
    expect(deliveries.some((x: { attempts: number }) => x.attempts >= 2)).toBe(true);
  });

  it('a delivery still pending when its webhook is deactivated ends FAILED, saying why', async () => {
    const t = await createTenant(h);
    const hook = await h.http
      .post('/v1/webhooks')
      .set(auth(t.key))
      .send({ url: `${hookUrl}?deactivated`, events: ['site.stop.requested'] });
    expect(hook.status).toBe(201);
    const site = await provision(h, t, { name: 'hooked' });
    const deliveries = async () =>
      (await h.http.get(`/v1/webhooks/${hook.body.id}/deliveries`).set(auth(t.key))).body as {
        status: string;
        attempts: number;
        error: string | null;
      }[];
    receiver.failNext = 1_000_000;
    try {
      await h.http.post(`/v1/sites/${site.id}/stop`).set(auth(t.key));
      // Control: the receiver refuses it, so the delivery is retried and stays PENDING meanwhile.
      await eventually(
        async () => ((await deliveries()).some((d) => d.status === 'PENDING' && d.attempts >= 1) ? true : undefined),
        'a failed attempt',
      );
      expect((await h.http.patch(`/v1/webhooks/${hook.body.id}`).set(auth(t.key)).send({ active: false })).status).toBe(200);
      const [ended] = await eventually(async () => {
        const list = await deliveries();
        return list.length === 1 && list[0].status === 'FAILED' ? list : undefined;
      }, 'the delivery to end');
      expect(ended.error).toMatch(/deactivated/);
    } finally {
      receiver.failNext = 0;
    }
  });

  it('webhooks have REST and GraphQL CRUD, scoped to the tenant, with bad URLs refused', async () => {
    const bad = await h.http.post('/v1/webhooks').set(auth(a.key)).send({ url: 'ftp://example.com/x' });
    expect(bad.status).toBe(400);
    const created = await gql<{ createWebhook: { id: string; url: string; secret: string } }>(
      h,
      a.key,
      'mutation($u: String!) { createWebhook(input: { url: $u, events: ["site.down"] }) { id url secret } }',
      { u: `${hookUrl}?gql` },
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.createWebhook.id;
    const updated = await gql<{ updateWebhook: { active: boolean } }>(
      h,
      a.key,
      'mutation($id: ID!) { updateWebhook(id: $id, input: { active: false }) { active } }',
      { id },
    );
    expect(updated.data!.updateWebhook.active).toBe(false);
    expect((await h.http.get(`/v1/webhooks/${id}`).set(auth(b.key))).status).toBe(404);
    expect((await h.http.delete(`/v1/webhooks/${id}`).set(auth(b.key))).status).toBe(404);
    const listB = (await h.http.get('/v1/webhooks').set(auth(b.key))).body.map((w: { id: string }) => w.id);
    expect(listB).not.toContain(id);
    expect(JSON.stringify((await h.http.get('/v1/webhooks').set(auth(a.key))).body)).not.toMatch(/whsec_|secret/);
    const deleted = await gql<{ deleteWebhook: { id: string } }>(h, a.key, 'mutation($id: ID!) { deleteWebhook(id: $id) { id } }', { id });
    expect(deleted.data!.deleteWebhook.id).toBe(id);
    expect((await h.http.get(`/v1/webhooks/${id}`).set(auth(a.key))).status).toBe(404);
  });

  it('events of tenant A are never visible to tenant B: REST, GraphQL, SSE and subscriptions', async () => {
    const site = await provision(h, a, { name: 'private' });
    // B listens on the SSE stream while A's site changes.
    const url = new URL('/v1/events/stream', h.berth.url);
    const seenByB: string[] = [];
    const seenByA: string[] = [];
    const listen = (key: string, into: string[]) =>
      new Promise<http.ClientRequest>((resolve) => {
        const req = http.get(url, { headers: auth(key) }, (res) => {
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-type']).toMatch(/text\/event-stream/);
          res.on('data', (c: Buffer) => into.push(c.toString()));
          resolve(req);
        });
      });
    const [streamB, streamA] = await Promise.all([listen(b.key, seenByB), listen(a.key, seenByA)]);
    const stop = await h.http.post(`/v1/sites/${site.id}/stop`).set(auth(a.key));
    await waitForJob(h, a.key, stop.body.job.id);
    await eventually(() => seenByA.join('').includes('site.stop.requested'), 'A to see its own event on the stream');
    streamA.destroy();
    streamB.destroy();
    expect(seenByB.join('')).not.toContain(site.id);

    const restB = (await h.http.get('/v1/events?limit=200').set(auth(b.key))).body as EventBody[];
    expect(restB.every((e) => e.tenantId === b.tenant.id)).toBe(true);
    expect((await h.http.get(`/v1/events?siteId=${site.id}`).set(auth(b.key))).status).toBe(404);
    expect((await h.http.get(`/v1/sites/${site.id}/events`).set(auth(b.key))).status).toBe(404);
    const gqlB = await gql<{ events: { tenantId: string }[] }>(h, b.key, '{ events(limit: 200) { tenantId } }');
    expect(gqlB.data!.events.every((e) => e.tenantId === b.tenant.id)).toBe(true);
    const hidden = await gql(h, b.key, `{ events(siteId: "${site.id}") { id } }`);
    expect(hidden.errors?.[0].extensions?.code).toBe('SITE_NOT_FOUND');
    const stream404 = await h.http.get(`/v1/events/stream?siteId=${site.id}`).set(auth(b.key));
    expect(stream404.status).toBe(404);
    const adminView = (await h.http.get(`/v1/events?siteId=${site.id}`).set(auth(h.admin))).body as EventBody[];
    expect(adminView.map((e) => e.type)).toEqual(expect.arrayContaining(['site.created', 'site.stop.requested']));
  });
});

describe('without an SMTP server', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ ...FAST, BERTH_SMTP_HOST: '' });
  });
  afterAll(async () => {
    await h.stop();
    await removeSuiteObjects();
  });

  it('records the email as an event with the message instead of sending it', async () => {
    const t = await createTenant(h);
    const site = await provision(h, t, { name: 'quiet', restartPolicy: 'no' });
    await h.docker.getContainer(testNames.wpContainer(t.tenant.slug, 'quiet')).kill();
    await waitForEvent(h, t.key, site.id, 'site.down');
    const recorded = (subject: RegExp) =>
      eventually(async () => {
        const events = (await h.http.get('/v1/events?type=email.recorded').set(auth(t.key))).body as EventBody[];
        return events.find((e) => subject.test(String(e.data.subject)));
      }, `the email.recorded event of ${subject}`);
    const down = await recorded(/is DOWN/);
    expect(down.data).toMatchObject({ to: `ops@${t.tenant.slug}.example`, subject: '[Berth] Site quiet is DOWN' });
    expect(String(down.data.body)).toContain('Your site quiet is DOWN');
    // The owner's set-password email is recorded too, but its body (the link) stays out of the event.
    const setPassword = await recorded(/choose your password/);
    expect(setPassword.data).toMatchObject({ to: `ops@${t.tenant.slug}.example` });
    expect(setPassword.data.body).toBeUndefined();
  });
});
