/**
 * The reconciler's pass at scale (issue 6/6: 10,000 site rows, one pass ≤ 1 s of CPU, no
 * secret decrypted just to compare hashes). Berth's own code from dist/ (its planner, the
 * pass of src/reconcile/site-pass.ts, its Prisma client) over site rows in a database of its
 * own, with the engine's side made up: every container, network and volume the plans name,
 * as the Engine's list calls would return them (JSON parsed as Berth parses it). Measured per
 * pass, in this process's CPU time: the list output parsed into the engine view, the sites'
 * query, and the comparison of every site with its plan. `BENCH_LOOPS_ROWS` (default
 * 1000,10000) sizes, `BENCH_ROUNDS` (5) passes each; the positive control makes 1 % of the
 * containers drift and checks that the pass finds exactly those.
 *
 * What it leaves out: the Engine's own time to list 20,000 containers (dockerd's CPU, not
 * Berth's), repairs (none are due in a steady state), and the parts of reconcileAll that do
 * not grow with the sites (the in-flight jobs' query, the rollout's failures, the orphans'
 * bookkeeping, which reads the same lists).
 *
 * Beside it, the database's side of an edge pass that finds nothing changed (EdgeService: the
 * routed sites' query and the configuration made from them, kept from the pass before); the
 * edge's side (asking Caddy) is in bench/edge.ts.
 *
 * Run by bench/control-loops.sh (`npm run bench:loops`, and `npm run bench` unless BENCH_ONLY
 * leaves out `loops`).
 */
/* eslint-disable @typescript-eslint/no-require-imports -- Berth's compiled modules, from its build */
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { cpuMs, dropDatabase, freshDatabase, median, round } from './support';

const ROOT = resolve(__dirname, '../..');
const dist = (m: string) => require(join(ROOT, 'dist', m));
const ROWS = (process.env.BENCH_LOOPS_ROWS ?? '1000,10000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DB = 'berth_bench_loops';

interface Plan {
  networks: { name: string }[];
  volumes: { name: string }[];
  containers: { name: string; running: boolean; create: { Labels: Record<string, string>; HostConfig: { NetworkMode: string } } }[];
}
interface Row {
  id: string;
  tenant: { slug: string };
  domains?: { hostname: string }[];
}

async function main(): Promise<void> {
  const url = new URL(await freshDatabase(process.env.DATABASE_URL as string, DB, dist('database/migrator.js').migrate));

  const config = dist('config/config.js').loadConfig({
    ...process.env,
    DATABASE_URL: url.toString(),
    // Required by the configuration; nothing here connects to Redis.
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/15',
    BERTH_INSTANCE: 'bench-loops',
    BERTH_ADMIN_KEY: `berth_bench-${randomBytes(24).toString('base64url')}`,
    BERTH_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    BERTH_EDGE: 'caddy',
    BERTH_LOG_LEVEL: 'error',
  });
  const { SecretBox } = dist('common/crypto.js');
  const box = new SecretBox(Buffer.from(config.BERTH_ENCRYPTION_KEY, 'base64'));
  // Every decryption is counted: a pass must make none.
  let opened = 0;
  const open = SecretBox.prototype.open;
  SecretBox.prototype.open = function (this: unknown, sealed: string) {
    opened += 1;
    return open.call(this, sealed);
  };
  const planner = new (dist('sites/site-planner.js').SitePlanner)(config, box);
  const edge = new (dist('edge/edge.service.js').EdgeService)(config, null, null, { adminListen: '127.0.0.1:2019' }, null);
  const { reconcileSites } = dist('reconcile/site-pass.js');
  const { engineView, sitesToReconcile } = dist('reconcile/reconciler.service.js');
  const { PRIMARY_DOMAIN } = dist('edge/edge.service.js');
  const { PrismaClient } = dist('generated/prisma/client.js');
  const { PrismaPg } = require('@prisma/adapter-pg');
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url.toString() }) });
  // Berth's own PrismaService for the edge (its pass reads through the service's pool).
  const edgePrisma = new (dist('database/prisma.service.js').PrismaService)(config);
  // Connected as Berth connects it: its $disconnect then ends the pool too.
  await edgePrisma.$connect();
  const edgeDb = new (dist('edge/edge.service.js').EdgeService)(config, edgePrisma, null, { adminListen: '127.0.0.1:2019' }, null);
  const db = new Client({ connectionString: url.toString() });
  await db.connect();

  const results: { rows: number; listParseMs: number[]; queryMs: number[]; passMs: number[]; totalMs: number[]; edgeMs: number[] }[] = [];
  let made = 0;
  try {
    for (const rows of ROWS) {
      // Rows up to `rows`, ten sites a tenant, sealed as Berth seals them.
      const tenants = Math.ceil(rows / 10);
      const have = made;
      if (rows > have) {
        const ti = Array.from({ length: Math.ceil((rows - have) / 10) }, (_, k) => have / 10 + k);
        await db.query(
          `INSERT INTO "Tenant" (id, slug, name, "contactEmail", "networkIndex", "dbRootPasswordEnc", "updatedAt")
           SELECT gen_random_uuid(), 'lt' || g, 'Loops ' || g, 'ops@lt' || g || '.example', g + 1, pw, now()
           FROM unnest($1::int[], $2::text[]) AS u(g, pw)`,
          [ti, ti.map(() => box.seal(randomBytes(18).toString('base64url')))],
        );
        const n = rows - have;
        await db.query(
          `WITH t AS (SELECT id, "networkIndex" - 1 AS i FROM "Tenant" WHERE "networkIndex" > $3),
                s AS (SELECT gen_random_uuid() AS id, t.id AS tid, t.i * 10 + k AS n, k FROM t, generate_series(0, 9) k)
           INSERT INTO "Site" (id, "tenantId", name, "liveName", status, "desiredState", "dbName", "dbUser", "dbPasswordEnc",
                               "hostPort", "installedAt", "updatedAt")
           SELECT id, tid, 'site-' || k, 'site-' || k, 'RUNNING', 'RUNNING', 'wp_' || substr(md5(id::text), 1, 16),
                  'wp_' || substr(md5(id::text), 1, 16), $1, 20000 + n, now(), now()
           FROM s ORDER BY n LIMIT $2`,
          [box.seal(randomBytes(18).toString('base64url')), n, have / 10],
        );
        // Each site's WordPress at its public URL, as its last job left it.
        const sites = (await prisma.site.findMany({ include: { tenant: true, domains: PRIMARY_DOMAIN } })) as Row[];
        await db.query(`UPDATE "Site" s SET "wordpressUrl" = u.url FROM unnest($1::uuid[], $2::text[]) AS u(id, url) WHERE s.id = u.id`, [
          sites.map((x) => x.id),
          sites.map((x) => edge.wordpressUrl(x, x.tenant) as string),
        ]);
        made = rows;
      }
      process.stderr.write(`[bench] ${rows} site rows over ${tenants} tenants\n`);

      // The engine as its list calls would describe it, every object of every plan there.
      const all = (await prisma.site.findMany({ include: { tenant: true, domains: PRIMARY_DOMAIN } })) as (Row & object)[];
      const networks = new Map<string, string>();
      const volumes: { Name: string }[] = [];
      const containers = new Map<string, unknown>();
      for (const s of all) {
        const plan = planner.expectedPlan((s as { tenant: unknown }).tenant, s) as Plan;
        for (const n of plan.networks) if (!networks.has(n.name)) networks.set(n.name, randomBytes(32).toString('hex'));
        for (const v of plan.volumes) volumes.push({ Name: v.name });
        for (const c of plan.containers) {
          const net = c.create.HostConfig.NetworkMode;
          containers.set(c.name, {
            Id: randomBytes(32).toString('hex'),
            Names: [`/${c.name}`],
            State: c.running ? 'running' : 'exited',
            Labels: c.create.Labels,
            NetworkSettings: { Networks: { [net]: { NetworkID: networks.get(net) } } },
          });
        }
      }
      const listJson = JSON.stringify([...containers.values()]);
      const networksJson = JSON.stringify([...networks].map(([Name, Id]) => ({ Name, Id })));
      const volumesJson = JSON.stringify({ Volumes: volumes });
      const repairs: string[] = [];
      const ports = {
        publicUrl: (s: Row) => edge.wordpressUrl(s, s.tenant, s.domains?.[0]?.hostname),
        repair: async (s: Row) => {
          repairs.push(s.id);
          return true;
        },
        recordProblem: async (_s: Row, message: string) => {
          throw new Error(`a site could not be reconciled: ${message}`);
        },
        warn: (m: string) => process.stderr.write(`[bench] warn: ${m}\n`),
      };
      /** One pass as reconcileAll makes it (reconciler.service.ts), timed in this process's CPU. */
      const pass = async (list: string) => {
        const c0 = cpuMs();
        const seen = engineView(JSON.parse(list), JSON.parse(networksJson), (JSON.parse(volumesJson) as { Volumes: unknown[] }).Volumes);
        const c1 = cpuMs();
        const sites = (await sitesToReconcile(prisma)) as unknown[];
        const c2 = cpuMs();
        // A pass's own ports: its tenants' plans are kept for it, as the reconciler's are.
        const tenantPlans = new Map();
        const passPorts = { ...ports, expectedPlan: (x: { tenant: unknown }) => planner.expectedPlan(x.tenant, x, tenantPlans) };
        const repaired = (await reconcileSites(sites, seen, { batch: 10, inFlight: 0, halted: false }, passPorts)) as string[];
        const c3 = cpuMs();
        return { repaired, listParseMs: c1 - c0, queryMs: c2 - c1, passMs: c3 - c2, totalMs: c3 - c0, sites: sites.length };
      };

      // Positive control: 1 % of the WordPress containers gone; the pass finds exactly those (repairs limited by nothing: not a rollout).
      const gone = all.filter((_, i) => i % 100 === 0).map((s) => s.id);
      const drifted = JSON.stringify(
        [...containers.values()].filter(
          (c) =>
            !gone.includes((c as { Labels: Record<string, string> }).Labels['berth.site-id']) ||
            (c as { Labels: Record<string, string> }).Labels['berth.role'] !== 'wordpress',
        ),
      );
      const control = await pass(drifted);
      if (control.repaired.length !== gone.length || !gone.every((id) => control.repaired.includes(id)))
        throw new Error(`the control pass repaired ${control.repaired.length} sites, expected the ${gone.length} made to drift`);

      const r = {
        rows,
        listParseMs: [] as number[],
        queryMs: [] as number[],
        passMs: [] as number[],
        totalMs: [] as number[],
        edgeMs: [] as number[],
      };
      /** The database's side of an edge pass: the routed sites, and the configuration made from them (made once, then kept while they are unchanged). */
      const edgePass = async () => {
        const c0 = cpuMs();
        const routes = (await edgeDb.routes()) as unknown[];
        edgeDb.configOf(routes);
        if (routes.length !== rows) throw new Error(`the edge pass routed ${routes.length} sites, expected ${rows}`);
        return cpuMs() - c0;
      };
      await edgePass();
      opened = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const p = await pass(listJson);
        if (p.repaired.length !== 0) throw new Error(`a steady-state pass repaired ${p.repaired.length} sites`);
        if (p.sites !== rows) throw new Error(`the pass read ${p.sites} sites, expected ${rows}`);
        r.listParseMs.push(p.listParseMs);
        r.queryMs.push(p.queryMs);
        r.passMs.push(p.passMs);
        r.totalMs.push(p.totalMs);
        r.edgeMs.push(await edgePass());
      }
      if (opened !== 0) throw new Error(`${ROUNDS} passes decrypted ${opened} secrets`);
      results.push(r);
      process.stderr.write(
        `[bench]   control: ${gone.length} containers removed → ${control.repaired.length} repairs; ${ROUNDS} steady passes: 0 repairs, 0 secrets decrypted; CPU per pass median ${round(median(r.totalMs))} ms\n`,
      );
    }
  } finally {
    await prisma.$disconnect();
    await edgePrisma.$disconnect();
    await db.end();
    await dropDatabase(process.env.DATABASE_URL as string, DB);
  }
  const s = (xs: number[]) => `${round(median(xs))} (${round(Math.min(...xs))}-${round(Math.max(...xs))})`;
  const lines = [
    `Reconciler pass over made-up engine objects, Berth's CPU per pass in ms, median (min-max) of ${ROUNDS}; no secret decrypted in any pass`,
    `| site rows | parse the list calls | query the sites | compare with plans | total | goal | an edge pass, database side |`,
    `| --- | --- | --- | --- | --- | --- | --- |`,
    ...results.map(
      (r) =>
        `| ${r.rows} | ${s(r.listParseMs)} | ${s(r.queryMs)} | ${s(r.passMs)} | ${s(r.totalMs)} | ${r.rows >= 10000 ? `≤ 1000 ms: ${median(r.totalMs) <= 1000 ? 'met' : 'NOT MET'}` : ''} | ${s(r.edgeMs)} |`,
    ),
  ];
  if (results.length > 1) {
    const [a, b] = [results[0], results.at(-1)!];
    lines.push(
      `growth: ${b.rows / a.rows}× the rows, ${round(median(b.totalMs) / median(a.totalMs), 1)}× the CPU (linear or better: ${median(b.totalMs) / median(a.totalMs) <= (b.rows / a.rows) * 1.2 ? 'yes' : 'NO'})`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
