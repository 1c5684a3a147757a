// A soak for orphaned processes: a database server created with Berth's own create options
// (planTenant from dist/, built by `npm run build`) and a control made the same way but
// without an init get health checks that time out every couple of seconds, which is what a
// slow machine does to them. Prints the zombie count of both over time.
//
//   node bench/.out/zombie-soak.js [SECONDS]      (default 180; compile with tsc -p bench/tsconfig.json)
//
// Docker kills a timed-out health check's process but not its children: they are left to the
// container's PID 1, which must reap them. Needs berth/mariadb:10.11 (scripts/images.sh mariadb).
import Docker from 'dockerode';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createPlan, planSettings, removeLabelled, sleep } from './support';

interface PlanContainer {
  create: Docker.ContainerCreateOptions & { name: string; HostConfig: Docker.HostConfig };
}
interface PlanModule {
  planTenant(
    t: { slug: string; networkIndex: number; dbRootPassword: string; dbRootPasswordSealed: string; maxMemoryMb: number; maxCpus: number },
    s: Record<string, unknown>,
  ): {
    networks: { name: string; subnet: string; gateway: string; labels: Record<string, string> }[];
    volumes: { name: string; labels: Record<string, string> }[];
    containers: PlanContainer[];
  };
}

/** Berth's compiled code (`npm run build`); BERTH_DIST points elsewhere (a copy of another build). */
const DIST = process.env.BERTH_DIST ?? resolve(__dirname, '../../dist');
const INSTANCE = 'zombie-soak';
const seconds = Number(process.argv[2] ?? 180);
const docker = new Docker({ socketPath: (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '') });
const log = (msg: string) => process.stdout.write(`${msg}\n`);

const settings = planSettings(INSTANCE, '10.92.0.0/16', { dbImage: process.env.SOAK_DB_IMAGE ?? 'berth/mariadb:10.11' });

/** Health checks that always time out; each leaves a child to PID 1 (Docker kills sh on the timeout, or sh ends first). */
const TIMING_OUT = { Test: ['CMD-SHELL', 'sleep 2 & sleep 3; true'], Interval: 1e9, Timeout: 300e6, StartPeriod: 1e6, Retries: 1000 };

/** Host processes in state Z whose parent is in the container (`docker top` lists no zombies: they left the cgroup). */
async function zombies(id: string): Promise<number> {
  const top = (await docker.getContainer(id).top({ ps_args: '-o pid' })) as { Titles: string[]; Processes: string[][] };
  const parents = new Set(top.Processes.map((p) => p[0]));
  let n = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status) && parents.has(status.match(/^PPid:\s+(\d+)/m)?.[1] ?? '')) n += 1;
    } catch {
      // gone
    }
  }
  return n;
}

async function create(plan: ReturnType<PlanModule['planTenant']>, init: boolean): Promise<string> {
  const [id] = await createPlan(docker, plan, (options) => ({
    ...options,
    Healthcheck: TIMING_OUT,
    HostConfig: { ...options.HostConfig, Init: init },
  }));
  return id;
}

async function main(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- Berth's own build, loaded at run time
  const { planTenant } = require(join(DIST, 'sites/site-plan.js')) as PlanModule;
  const tenant = (slug: string, networkIndex: number) => ({
    slug,
    networkIndex,
    dbRootPassword: 'soak-root-password-0123',
    dbRootPasswordSealed: 'bench-not-sealed',
    maxMemoryMb: 256,
    maxCpus: 1,
  });
  const berthPlan = planTenant(tenant('soakinit', 1), settings);
  const controlPlan = planTenant(tenant('soakctl', 2), settings);
  if (berthPlan.containers[0].create.HostConfig.Init !== true)
    log('note: this build of Berth does not set Init: the "berth" column is then an init-less server too');
  await removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
  const berth = await create(berthPlan, berthPlan.containers[0].create.HostConfig.Init === true);
  const control = await create(controlPlan, false);
  log(
    `soak: ${seconds} s; health check '${TIMING_OUT.Test[1]}' every ${TIMING_OUT.Interval / 1e9} s with a ${TIMING_OUT.Timeout / 1e6} ms timeout`,
  );
  log(
    `berth:   ${berthPlan.containers[0].create.name} (Berth's create options, Init: ${berthPlan.containers[0].create.HostConfig.Init}, PidsLimit: ${settings.pidsLimit})`,
  );
  log(`control: ${controlPlan.containers[0].create.name} (the same options without Init)`);
  log('elapsed_s  zombies_berth  zombies_control  failed_checks_berth  failed_checks_control');
  const started = Date.now();
  const samples: { t: number; berth: number; control: number }[] = [];
  for (;;) {
    const t = Math.round((Date.now() - started) / 1000);
    const [b, c, hb, hc] = await Promise.all([
      zombies(berth),
      zombies(control),
      docker.getContainer(berth).inspect(),
      docker.getContainer(control).inspect(),
    ]);
    samples.push({ t, berth: b, control: c });
    log(
      `${String(t).padStart(9)}  ${String(b).padStart(13)}  ${String(c).padStart(15)}  ${String(hb.State.Health?.FailingStreak ?? '-').padStart(19)}  ${String(hc.State.Health?.FailingStreak ?? '-').padStart(21)}`,
    );
    if (t >= seconds) break;
    await sleep(Math.min(10_000, Math.max(0, seconds * 1000 - (Date.now() - started))));
  }
  const maxBerth = Math.max(...samples.map((s) => s.berth));
  const last = samples[samples.length - 1];
  log(
    `result: berth max ${maxBerth} zombies (end ${last.berth}); control end ${last.control} zombies (${(last.control / Math.max(1, last.t / 60)).toFixed(1)} per minute)`,
  );
}

const cleanup = () => removeLabelled(docker, [`berth.instance=${INSTANCE}`]);
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
main()
  .catch((e: Error) => {
    process.stderr.write(`zombie-soak failed: ${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
