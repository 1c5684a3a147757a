import { LABEL, type ContainerSpec, type Plan, type Role } from './plan.types';

/**
 * What the Docker Engine has of a plan's objects, by name: what its list calls return
 * (one call per kind covers every site) or one inspect, reduced to what a plan decides.
 */
export interface EngineView {
  /** Network name → its id. */
  networks: ReadonlyMap<string, string>;
  /** Absent where volumes are not compared (a Swarm: each is made on its node with its task's container). */
  volumes?: ReadonlySet<string>;
  containers: ReadonlyMap<string, SeenContainer>;
}

export interface SeenContainer {
  /** `running`, `exited`, `created`, `restarting`, ... */
  state: string;
  labels: Record<string, string>;
  /** Network name → the id of the network the container is attached to under that name. */
  networks: Record<string, string | undefined>;
}

export type DifferenceKind = 'missing' | 'settings' | 'detached' | 'state';

/** One way the engine differs from the plan. */
export interface Difference {
  object: string;
  kind: DifferenceKind;
  message: string;
}

const WHAT: Record<Role, string> = {
  network: 'tenant network',
  db: 'tenant database server',
  'db-volume': 'tenant database volume',
  wordpress: 'WordPress container',
  volume: 'site volume',
};

const what = (name: string, labels: Record<string, string>) => `${WHAT[labels[LABEL.role] as Role] ?? 'object'} ${name}`;

/**
 * Why an existing container must be made anew to match its spec, or undefined: settings
 * (the spec hash) differ, or it is cut off from its network (the network was removed and
 * made again, so the container holds an endpoint on a network that no longer exists).
 * Apply acts on this and the reconciler reports it: the two cannot disagree.
 */
export function replacementReason(
  spec: ContainerSpec,
  seen: Pick<SeenContainer, 'labels' | 'networks'>,
  networkIds: ReadonlyMap<string, string>,
): { kind: 'settings' | 'detached'; reason: string } | undefined {
  if (seen.labels[LABEL.specHash] !== spec.create.Labels[LABEL.specHash]) return { kind: 'settings', reason: 'settings differ' };
  const net = spec.create.HostConfig?.NetworkMode;
  if (!net) return undefined;
  const current = networkIds.get(net);
  const attached = seen.networks[net];
  return attached && current && attached === current ? undefined : { kind: 'detached', reason: `not attached to network ${net}` };
}

/**
 * Every way the engine differs from the plan, in the order apply makes objects (networks,
 * volumes, then containers in plan order); empty when applying the plan would change nothing.
 * `compareSettings` false skips the settings of containers whose full spec is not known yet.
 */
export function planDrift(plan: Plan, seen: EngineView, compareSettings = true): Difference[] {
  const found: Difference[] = [];
  const missing = (name: string, labels: Record<string, string>) =>
    found.push({ object: name, kind: 'missing', message: `${what(name, labels)} is missing` });
  for (const n of plan.networks) if (!seen.networks.has(n.name)) missing(n.name, n.labels);
  if (seen.volumes) for (const v of plan.volumes) if (!seen.volumes.has(v.name)) missing(v.name, v.labels);
  for (const c of plan.containers) {
    const labels = c.create.Labels;
    const container = seen.containers.get(c.name);
    if (!container) {
      missing(c.name, labels);
      continue;
    }
    const replace = replacementReason(c, container, seen.networks);
    if (replace && (compareSettings || replace.kind !== 'settings')) {
      found.push({ object: c.name, kind: replace.kind, message: `${what(c.name, labels)}: ${replace.reason}` });
      continue;
    }
    if (c.running && container.state !== 'running')
      found.push({ object: c.name, kind: 'state', message: `${what(c.name, labels)} is ${container.state}, should be running` });
    if (!c.running && container.state === 'running')
      found.push({ object: c.name, kind: 'state', message: `${what(c.name, labels)} is running, should be stopped` });
  }
  return found;
}
