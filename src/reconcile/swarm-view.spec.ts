import { planDrift } from '../docker/plan-drift';
import { LABEL } from '../docker/plan.types';
import { serviceSpec } from '../docker/swarm-plan';
import { planSite, planTenant, type PlanSettings, type SiteFacts, type TenantFacts } from '../sites/site-plan';
import { swarmView } from './swarm-view';

const settings: PlanSettings = {
  instance: 'default',
  wordpressImage: 'wordpress:6-apache',
  dbImage: 'mariadb:10.11',
  wordpressDataPath: '/var/www/html',
  publishAddress: '127.0.0.1',
  subnetPool: '10.64.0.0/12',
  subnetPrefix: 24,
  pidsLimit: 256,
  dbMemoryMb: 256,
  dbCpus: 0.25,
};
const tenant: TenantFacts = { slug: 'acme', networkIndex: 3, dbRootPasswordSealed: 'v1.root', maxMemoryMb: 512, maxCpus: 1 };
const site: SiteFacts = {
  id: '11111111-2222-3333-4444-555555555555',
  name: 'blog',
  env: {},
  restartPolicy: 'unless-stopped',
  memoryMb: 256,
  cpus: 0.5,
  dbName: 'wp_1111',
  dbUser: 'wp_1111',
  dbPasswordSealed: 'v1.site',
  // Sites on a Swarm have no host port: the job's plan and the reconciler's both say 0.
  hostPort: 0,
  running: true,
};

describe('swarmView: the services of a Swarm as the drift rules read them', () => {
  const shared = planTenant(tenant, settings);
  const own = planSite(tenant, site, settings);
  const plan = {
    networks: [...shared.networks, ...own.networks],
    volumes: [...shared.volumes, ...own.volumes],
    containers: [...shared.containers, ...own.containers],
  };
  const network = { Name: shared.networks[0].name, Id: 'net-id-1' };
  // What the manager answers: the applied specs, with the network's name turned into its id.
  const services = (edit: (c: (typeof plan.containers)[number]) => Partial<{ replicas: number; hash: string }> = () => ({})) =>
    plan.containers.map((c) => {
      const spec = serviceSpec(c, { nodeId: 'n1' }, [], c.create.Labels[LABEL.role] === 'wordpress' ? ['edge-id'] : []);
      const change = edit(c);
      const task = spec.TaskTemplate as { Networks: { Target: string }[] };
      task.Networks = task.Networks.map((n) => ({ Target: n.Target === network.Name ? network.Id : n.Target }));
      if (change.hash) spec.Labels = { ...spec.Labels, [LABEL.specHash]: change.hash };
      if (change.replicas !== undefined) spec.Mode = { Replicated: { Replicas: change.replicas } };
      return { Spec: spec };
    });

  it('finds no drift in the services a job applied, and does not compare volumes', () => {
    expect(plan.volumes.length).toBeGreaterThan(0);
    expect(planDrift(plan, swarmView(services(), [network]))).toEqual([]);
  });

  it('finds a missing service, changed settings, a stopped service that should run, and a service off its network', () => {
    const wp = own.containers[0].name;
    const db = shared.containers[0].name;
    expect(
      planDrift(
        plan,
        swarmView(
          services().filter((s) => s.Spec.Name !== wp),
          [network],
        ),
      ).map((d) => [d.object, d.kind]),
    ).toEqual([[wp, 'missing']]);
    const drifted = services((c) => (c.name === db ? { hash: 'older' } : { replicas: 0 }));
    expect(planDrift(plan, swarmView(drifted, [network])).map((d) => [d.object, d.kind])).toEqual([
      [db, 'settings'],
      [wp, 'state'],
    ]);
    // The tenant network made again (a new id): its services hold the old one.
    expect(planDrift(plan, swarmView(services(), [{ ...network, Id: 'net-id-2' }])).map((d) => d.kind)).toEqual(['detached', 'detached']);
  });
});
