import { execFileSync, execSync } from 'node:child_process';
import { createTenant, exec, startHarness, waitForJob } from '../harness';
import { TEST_INSTANCE, testNames } from '../env';
import { eventually } from '../receivers';
import { assertConverged, authHeader as auth, faultCase, FaultRig, FAULT_ENV, onFailurePrint, PrivateRedis, printSummary } from './rig';

/*
 * Each case breaks something, then asserts that every site reaches its desired state, no
 * Docker object is duplicated or orphaned, no row is lost and no job is left unfinished.
 * Some cases restart machine-wide services (PostgreSQL, the Docker Engine): this suite is
 * meant for CI and dedicated machines (`npm run test:faults`).
 */

const redis = new PrivateRedis();
let rig: FaultRig;

beforeAll(async () => {
  await redis.start();
  rig = new FaultRig({ ...FAULT_ENV, REDIS_URL: redis.url });
  await rig.start();
  onFailurePrint(() => rig.tail());
});
afterAll(async () => {
  await rig?.stop().catch(() => undefined);
  await redis.stop();
  printSummary();
});

const h = () => rig.api;

async function requestSite(tenantId: string, name: string, key = rig.key()) {
  const res = await h().http.post('/v1/sites').set(auth(key)).send({ name, tenantId });
  expect(res.status).toBe(202);
  return res.body as { site: { id: string }; job: { id: string } };
}

async function stepsOf(jobId: string): Promise<{ name: string; status: string }[]> {
  const { rows } = await h().db.query('SELECT steps FROM "Job" WHERE id = $1', [jobId]);
  return rows[0]?.steps ?? [];
}

/**
 * A new tenant's site whose database holds a marker, backed up with it as 'in the backup' and
 * changed since to 'after the backup'; `sql` runs a query in its database.
 */
async function backedUpSite(name: string) {
  const { tenant } = await createTenant(h());
  const { site, job } = await requestSite(tenant.id, name);
  await waitForJob(h(), rig.key(), job.id);
  const { dbName } = (await h().db.query('SELECT "dbName" FROM "Site" WHERE id = $1', [site.id])).rows[0] as { dbName: string };
  const sql = async (query: string) => {
    const res = await exec(
      h().docker,
      testNames.dbContainer(tenant.slug),
      ['sh', '-c', `MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -uroot -h127.0.0.1 -N ${dbName} -e "$Q"`],
      undefined,
      [`Q=${query}`],
    );
    if (res.code !== 0) throw new Error(`SQL failed: ${res.out}`);
    return res.out.trim();
  };
  await sql("CREATE TABLE marker (v VARCHAR(40)); INSERT INTO marker VALUES ('in the backup')");
  const res = await h().http.post(`/v1/sites/${site.id}/backups`).set(auth(rig.key()));
  expect((await waitForJob(h(), rig.key(), res.body.job.id)).status).toBe('SUCCEEDED');
  await sql("UPDATE marker SET v = 'after the backup'");
  return { site, sql, backup: res.body.backup.id as string };
}

/** Once a restore job is past its checkpoint, putting the database and files back: that step's name. */
function inRestoreStep(jobId: string): Promise<string> {
  return eventually(
    async () => {
      const steps = await stepsOf(jobId);
      return steps.some((x) => x.name.startsWith('restore ')) ? steps.at(-1)!.name : undefined;
    },
    'the restore step',
    120_000,
    10,
  );
}

// In the order they start: the database server's side and WordPress's run side by side.
const PROVISION_STEPS = [
  'tenant network',
  'database server',
  'site volume and WordPress container',
  'wait for database server',
  'site database and user',
  'wait for HTTP',
  'install WordPress',
  'edge route and certificate',
  'route through the edge',
];

describe('worker killed', () => {
  it.each(PROVISION_STEPS.map((s, i) => [i + 1, s]))('SIGKILL at provisioning step %i (%s), then a new worker', async (_i, step) => {
    const { tenant } = await createTenant(h());
    let killedAt = '';
    await faultCase(
      `1. SIGKILL worker during provisioning step "${step}"`,
      async () => {
        const { job } = await requestSite(tenant.id, 'kill');
        killedAt = await eventually(
          async () => {
            const steps = await stepsOf(job.id);
            const idx = steps.findIndex((s) => s.name === step);
            // Kill as soon as the step (or a later one, for steps too quick to catch) started.
            return idx >= 0 || steps.length > PROVISION_STEPS.indexOf(step as string) ? steps.at(-1)!.name : undefined;
          },
          `step ${step}`,
          60_000,
          10,
        );
        await rig.killWorker('SIGKILL');
        await rig.startWorker();
        return `killed during "${killedAt}"`;
      },
      () => assertConverged(h(), TEST_INSTANCE),
    );
    const containers = await h().docker.listContainers({ all: true, filters: { label: [`berth.tenant=${tenant.slug}`] } });
    expect(containers.map((c) => c.Labels['berth.role']).sort()).toEqual(['db', 'wordpress']);
  });

  it('SIGKILL during delete, then a new worker', async () => {
    const { tenant } = await createTenant(h());
    const { site, job } = await requestSite(tenant.id, 'doomed');
    await waitForJob(h(), rig.key(), job.id);
    await faultCase(
      '2. SIGKILL worker during delete',
      async () => {
        const del = await h().http.delete(`/v1/sites/${site.id}`).set(auth(rig.key()));
        await eventually(async () => ((await stepsOf(del.body.job.id)).length > 0 ? true : undefined), 'the delete to start', 30_000, 10);
        await rig.killWorker('SIGKILL');
        await rig.startWorker();
      },
      async () => {
        await eventually(async () => {
          const { rows } = await h().db.query('SELECT status FROM "Site" WHERE id = $1', [site.id]);
          return rows[0].status === 'DELETED' ? true : undefined;
        }, 'the site to be deleted');
        await assertConverged(h(), TEST_INSTANCE);
      },
    );
    expect(await h().docker.listContainers({ all: true, filters: { label: [`berth.site-id=${site.id}`] } })).toEqual([]);
    expect((await h().docker.listVolumes({ filters: { label: [`berth.site-id=${site.id}`] } })).Volumes).toEqual([]);
  });

  it('SIGKILL during a restore, then a new worker: the restore finishes from the one checkpoint it took, the database never left empty', async () => {
    const { site, sql, backup } = await backedUpSite('restorable');
    let restoreJob = '';
    await faultCase(
      '3. SIGKILL worker during a restore',
      async () => {
        const res = await h().http.post(`/v1/sites/${site.id}/restore`).set(auth(rig.key())).send({ backupId: backup });
        expect(res.status).toBe(202);
        restoreJob = res.body.job.id;
        // Past the checkpoint, while the database and files are being put back.
        const at = await inRestoreStep(restoreJob);
        await rig.killWorker('SIGKILL');
        await rig.startWorker();
        return `killed during "${at}"`;
      },
      async () => {
        const done = await waitForJob(h(), rig.key(), restoreJob, 180_000);
        expect(done).toMatchObject({ status: 'SUCCEEDED', kind: 'RESTORE' });
        expect(done.attempts).toBeGreaterThan(1);
        await assertConverged(h(), TEST_INSTANCE);
      },
    );
    // The backup's content is back, the site runs, and the retry used the checkpoint the first attempt took.
    expect(await sql('SELECT v FROM marker')).toBe('in the backup');
    expect((await h().db.query('SELECT status FROM "Site" WHERE id = $1', [site.id])).rows[0].status).toBe('RUNNING');
    const checkpoints = await h().db.query(`SELECT id, status FROM "Backup" WHERE "siteId" = $1 AND kind = 'CHECKPOINT'`, [site.id]);
    expect(checkpoints.rows).toEqual([expect.objectContaining({ status: 'SUCCEEDED' })]);
    const { params } = (await h().db.query('SELECT params FROM "Job" WHERE id = $1', [restoreJob])).rows[0] as {
      params: { checkpointId: string };
    };
    expect(params.checkpointId).toBe(checkpoints.rows[0].id);
  });

  it("lock lost during a restore's last attempt: the restore is not given up half done, it runs again and finishes", async () => {
    const { site, sql, backup } = await backedUpSite('relocked');
    // One attempt a job (set where jobs are queued, by an API process of its own): before, a
    // restore whose lock was lost on it ended FAILED, the site left RESTORING and half
    // restored, and the reconciler's repair then served it RUNNING.
    const once = await startHarness({ ...FAULT_ENV, REDIS_URL: redis.url, BERTH_ROLE: 'api', BERTH_JOB_ATTEMPTS: '1' });
    let restoreJob = '';
    try {
      await faultCase(
        "3b. the site's lock lost during a restore's last attempt",
        async () => {
          const res = await once.http.post(`/v1/sites/${site.id}/restore`).set(auth(rig.key())).send({ backupId: backup });
          expect(res.status).toBe(202);
          restoreJob = res.body.job.id;
          const at = await inRestoreStep(restoreJob);
          // As a Redis that lost its data, or another holder, would: the next renewal finds it gone.
          expect(execFileSync('redis-cli', ['-u', redis.url, 'DEL', `berth:lock:site:${site.id}`], { encoding: 'utf8' }).trim()).toBe('1');
          return `lock removed during "${at}"`;
        },
        async () => {
          const done = await waitForJob(h(), rig.key(), restoreJob, 180_000);
          expect(done).toMatchObject({ status: 'SUCCEEDED', kind: 'RESTORE' });
          // With one attempt a job, a second one is the sweeper's: the first was cut off.
          expect(done.attempts).toBeGreaterThan(1);
          await assertConverged(h(), TEST_INSTANCE);
        },
      );
    } finally {
      await once.stop();
    }
    expect(await sql('SELECT v FROM marker')).toBe('in the backup');
    expect((await h().db.query('SELECT status FROM "Site" WHERE id = $1', [site.id])).rows[0].status).toBe('RUNNING');
  });

  it('SIGTERM during a job: the worker finishes it, nothing is half-made', async () => {
    const { tenant } = await createTenant(h());
    await faultCase(
      '9. SIGTERM worker during a job',
      async () => {
        const { job } = await requestSite(tenant.id, 'graceful');
        await eventually(async () => ((await stepsOf(job.id)).length > 0 ? true : undefined), 'the job to start', 30_000, 10);
        const code = await rig.killWorker('SIGTERM');
        expect(code).toBe(0);
        const { rows } = await h().db.query('SELECT status FROM "Job" WHERE id = $1', [job.id]);
        await rig.startWorker();
        return `worker exited 0; job was ${rows[0].status} when it exited`;
      },
      () => assertConverged(h(), TEST_INSTANCE),
    );
  });
});

describe('services restarted', () => {
  async function burst(n: number, prefix: string) {
    const { tenant } = await createTenant(h());
    return Promise.all(Array.from({ length: n }, (_, i) => requestSite(tenant.id, `${prefix}-${i}`)));
  }

  it('Redis restarted (losing its data) during a burst of jobs', async () => {
    await faultCase(
      '3. Redis restarted during a burst of 8 jobs',
      async () => {
        await burst(8, 'rb');
        await new Promise((r) => setTimeout(r, 300));
        await redis.stop();
        await new Promise((r) => setTimeout(r, 1000));
        await redis.start();
        return 'queue contents lost; rows re-enqueued by the sweeper';
      },
      () => assertConverged(h(), TEST_INSTANCE, 150_000),
    );
  });

  const localPg = /@(127\.0\.0\.1|localhost):5432\//.test(process.env.DATABASE_URL ?? '');
  (localPg ? it : it.skip)('PostgreSQL restarted during a burst of jobs (skipped when DATABASE_URL is not the local cluster)', async () => {
    await faultCase(
      '4. PostgreSQL restarted during a burst of 8 jobs',
      async () => {
        await burst(8, 'pb');
        await new Promise((r) => setTimeout(r, 300));
        execFileSync('pg_ctlcluster', ['15', 'main', 'restart'], { stdio: 'ignore' });
      },
      () => assertConverged(h(), TEST_INSTANCE, 150_000),
    );
  });
});

describe('Docker objects broken by hand', () => {
  it('docker rm -f a WordPress container, docker stop its database server, docker network rm', async () => {
    const { tenant } = await createTenant(h());
    const { site, job } = await requestSite(tenant.id, 'victim');
    await waitForJob(h(), rig.key(), job.id);
    await faultCase(
      '6. rm -f WordPress, stop database server, rm network',
      async () => {
        const d = h().docker;
        await d.getContainer(testNames.wpContainer(tenant.slug, 'victim')).remove({ force: true });
        await d.getContainer(testNames.dbContainer(tenant.slug)).stop({ t: 1 });
        const net = d.getNetwork(testNames.network(tenant.slug));
        const { Containers } = await net.inspect();
        for (const id of Object.keys(Containers ?? {})) await net.disconnect({ Container: id, Force: true });
        await net.remove();
      },
      () => assertConverged(h(), TEST_INSTANCE),
    );
    const { rows } = await h().db.query('SELECT "hostPort" FROM "Site" WHERE id = $1', [site.id]);
    expect((await fetch(`http://127.0.0.1:${rows[0].hostPort}/`)).status).toBe(200);
  });
});

describe('Docker Engine restarted', () => {
  const localDocker = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock') === 'unix:///var/run/docker.sock';
  (localDocker ? it : it.skip)(
    'with sites running (skipped when DOCKER_HOST is not the local engine)',
    async () => {
      const { tenant } = await createTenant(h());
      const jobs = await Promise.all(['eng-1', 'eng-2'].map((n) => requestSite(tenant.id, n)));
      for (const j of jobs) await waitForJob(h(), rig.key(), j.job.id);
      await faultCase(
        '5. Docker Engine restarted with sites running',
        async () => {
          const t0 = Date.now();
          execSync('pkill -TERM -x dockerd; for i in $(seq 1 120); do pgrep -x dockerd >/dev/null || break; sleep 0.5; done', {
            stdio: 'ignore',
            shell: '/bin/bash',
          });
          const stopped = Date.now();
          execFileSync('bash', ['scripts/services.sh', 'docker'], { stdio: 'ignore', env: { ...process.env, DOCKER_HOST: '' } });
          return `dockerd stopped in ${((stopped - t0) / 1000).toFixed(1)} s, answered again ${((Date.now() - stopped) / 1000).toFixed(1)} s later`;
        },
        () => assertConverged(h(), TEST_INSTANCE, 150_000),
      );
      // The event stream reconnected by itself: a container killed now is noticed at once.
      const { rows } = await h().db.query(`SELECT id FROM "Site" WHERE name = 'eng-1' AND "tenantId" = $1`, [tenant.id]);
      await eventually(async () => {
        const { rows: up } = await h().db.query(`SELECT health FROM "Site" WHERE id = $1`, [rows[0].id]);
        return up[0].health === 'UP' ? true : undefined;
      }, 'the site to be seen UP again');
      const killedAt = new Date();
      await h().docker.getContainer(testNames.wpContainer(tenant.slug, 'eng-1')).kill();
      await eventually(
        async () => {
          const { rows: down } = await h().db.query(
            `SELECT 1 FROM "Event" WHERE "siteId" = $1 AND type = 'site.down' AND "createdAt" >= $2`,
            [rows[0].id, killedAt],
          );
          return down.length ? true : undefined;
        },
        'site.down after the engine restart',
        15_000,
      );
      // The case's own waits (convergence 150 s, then strays and HTTP) outlast Jest's default,
      // which would cut them off without saying what was still wrong.
    },
    420_000,
  );
});

describe('concurrency', () => {
  it('100 concurrent POST /v1/sites with the same Idempotency-Key make exactly one site', async () => {
    const { tenant, key } = await createTenant(h());
    await faultCase(
      '7. 100 concurrent POSTs with one Idempotency-Key',
      async () => {
        const send = () => h().http.post('/v1/sites').set(auth(key)).set('Idempotency-Key', 'same-100').send({ name: 'once' });
        const res = await Promise.all(Array.from({ length: 100 }, send));
        expect(new Set(res.map((r) => r.status))).toEqual(new Set([202]));
        expect(new Set(res.map((r) => r.body.site.id)).size).toBe(1);
        const { rows } = await h().db.query('SELECT count(*)::int AS n FROM "Site" WHERE "tenantId" = $1', [tenant.id]);
        expect(rows[0].n).toBe(1);
        return '100 × 202, one site, one job';
      },
      () => assertConverged(h(), TEST_INSTANCE),
    );
  });

  it('50 sites created concurrently across 10 tenants are all RUNNING and distinct', async () => {
    const tenants = await Promise.all(Array.from({ length: 10 }, () => createTenant(h())));
    await faultCase(
      '8. 50 sites at once across 10 tenants',
      async () => {
        const res = await Promise.all(
          tenants.flatMap((t) =>
            Array.from({ length: 5 }, (_, i) =>
              h()
                .http.post('/v1/sites')
                .set(auth(t.key))
                .send({ name: `many-${i}` }),
            ),
          ),
        );
        expect(res.map((r) => `${r.status} ${r.status === 202 ? '' : JSON.stringify(r.body)}`.trim())).toEqual(res.map(() => '202'));
        return `${res.length} accepted`;
      },
      () => assertConverged(h(), TEST_INSTANCE, 300_000),
    );
    const { rows } = await h().db.query(
      `SELECT count(*)::int AS n, count(DISTINCT "hostPort")::int AS ports FROM "Site" WHERE "tenantId" = ANY($1::uuid[]) AND status = 'RUNNING'`,
      [tenants.map((t) => t.tenant.id)],
    );
    expect(rows[0]).toEqual({ n: 50, ports: 50 });
  }, 360_000);
});
