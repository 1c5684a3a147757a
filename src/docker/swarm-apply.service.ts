import { setTimeout } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { assertOwned } from './apply.service';
import { DockerService, type SwarmTask } from './docker.service';
import { LABEL, type ContainerSpec, type NetworkSpec, type Plan } from './plan.types';
import { overlayNetwork, secretName, serviceDrift, serviceSpec, type SwarmPlacement } from './swarm-plan';

/** What a service joins besides its plan: aliases on the plan's network, and other networks. */
export interface Attach {
  aliases?: (c: ContainerSpec) => string[];
  networks?: (c: ContainerSpec) => string[];
}

/** Task states after which a task's container has stopped for good. */
const ENDED = new Set(['complete', 'shutdown', 'failed', 'rejected', 'orphaned', 'remove']);

/** Labels a Docker secret with the service it belongs to, so the ones it no longer uses are found. */
const SECRET_OF = 'berth.service';

/**
 * The plan applied to a Swarm (BERTH_ENGINE=swarm), idempotently, as ApplyService does on a
 * single engine: the tenant's overlay network, each container as a one-task service pinned
 * to the tenant's node, its secrets as Docker secrets. Volumes are not created here: Swarm
 * makes them on the node when the task first starts (from the mount's VolumeOptions).
 */
@Injectable()
export class SwarmApplyService {
  private readonly instance: string;
  private readonly mtu?: number;
  private readonly stepTimeoutMs: number;

  constructor(
    private readonly docker: DockerService,
    @Inject(BERTH_CONFIG) config: Pick<BerthConfig, 'BERTH_INSTANCE' | 'BERTH_OVERLAY_MTU' | 'BERTH_STEP_TIMEOUT_MS'>,
  ) {
    this.instance = config.BERTH_INSTANCE;
    this.mtu = config.BERTH_OVERLAY_MTU;
    this.stepTimeoutMs = config.BERTH_STEP_TIMEOUT_MS;
  }

  /**
   * `attach.aliases` names the extra DNS names a service has on its plan's network (the
   * tenant's database server is `mysql` there, as `--link` makes it on a single engine);
   * `attach.networks` the networks it joins besides its plan's (WordPress: the edge's).
   */
  async apply(plan: Plan, where: SwarmPlacement, attach: Attach = {}, signal?: AbortSignal) {
    const changes: string[] = [];
    for (const n of plan.networks) {
      signal?.throwIfAborted();
      await this.ensureNetwork(n, changes);
    }
    for (const c of plan.containers) {
      signal?.throwIfAborted();
      const ids = await this.ensureSecrets(c, changes);
      signal?.throwIfAborted();
      await this.ensureService(c, where, attach.aliases?.(c) ?? [], attach.networks?.(c) ?? [], ids, changes);
      await this.pruneSecrets(c, changes);
    }
    return { changes };
  }

  /**
   * Removes the services (and their secrets) of the plan's containers, then its networks.
   * Volumes stay on the node they were made on (they are removed through that node's engine).
   */
  async remove(plan: Plan, signal?: AbortSignal): Promise<string[]> {
    const changes: string[] = [];
    for (const c of plan.containers) {
      const s = await this.docker.inspectService(c.name);
      if (!s) continue;
      assertOwned('service', c.name, s.Spec?.Labels, this.instance);
      await this.docker.removeService(s.ID);
      changes.push(`service ${c.name} removed`);
      await this.pruneSecrets({ ...c, secrets: {} }, changes);
    }
    for (const n of plan.networks) {
      for (const e of await this.docker.findNetworks(n.name)) {
        assertOwned('network', e.Name, e.Labels, this.instance);
        await this.removeNetworkOnceFree(e.Id, signal);
        changes.push(`overlay network ${n.name} removed`);
      }
    }
    return changes;
  }

  /**
   * Removes the services (and their secrets) that carry every label of `scope` (a site's),
   * and returns what went and the nodes their tasks ran on (where their volumes are).
   */
  async removeScope(scope: Record<string, string>): Promise<{ changes: string[]; nodes: string[] }> {
    const changes: string[] = [];
    const nodes = new Set<string>();
    for (const s of await this.docker.listServices({ ...scope, [LABEL.instance]: this.instance })) {
      const name = s.Spec?.Name ?? s.ID;
      for (const t of await this.docker.serviceTasks(s.ID)) if (t.NodeID) nodes.add(t.NodeID);
      await this.docker.removeService(s.ID);
      changes.push(`service ${name} removed`);
      await this.pruneSecrets({ name, secrets: {} }, changes);
    }
    return { changes, nodes: [...nodes] };
  }

  /** Removes the overlay networks that carry every label of `scope`, each once its tasks have left it. */
  async removeNetworks(scope: Record<string, string>, signal?: AbortSignal): Promise<string[]> {
    const changes: string[] = [];
    for (const n of await this.docker.listNetworks({ ...scope, [LABEL.instance]: this.instance })) {
      await this.removeNetworkOnceFree(n.Id, signal);
      changes.push(`overlay network ${n.Name} removed`);
    }
    return changes;
  }

  /** Whether a service of that name exists. */
  async exists(name: string): Promise<boolean> {
    return (await this.docker.inspectService(name)) !== undefined;
  }

  /** Restarts a service's task (a forced update: the same spec, a new task), as `docker service update --force` does. */
  async restart(name: string): Promise<void> {
    const s = await this.docker.inspectService(name);
    if (!s?.Spec) throw new Error(`service ${name} does not exist`);
    assertOwned('service', name, s.Spec.Labels, this.instance);
    const task = s.Spec.TaskTemplate as { ForceUpdate?: number };
    await this.docker.updateService(s.ID, s.Version?.Index ?? 0, {
      ...s.Spec,
      TaskTemplate: { ...s.Spec.TaskTemplate, ForceUpdate: (task.ForceUpdate ?? 0) + 1 },
    } as typeof s.Spec);
  }

  /**
   * Scales a service to no task and waits until none is left running (nothing writes to its
   * volume any more); returns the image it ran, or undefined when there is no such service.
   * The next apply of a plan that wants it running scales it back (its drift: "started").
   * With `onNode` (the node whose volume is about to be written), only a task there is waited
   * for: one on another node writes to that node's own volume, and one on a node that is down
   * (the manager goes on listing it as it last was) is stopped by Swarm when the node is back.
   */
  async stop(name: string, timeoutMs: number, signal?: AbortSignal, onNode?: string): Promise<string | undefined> {
    const s = await this.docker.inspectService(name);
    if (!s?.Spec) return undefined;
    assertOwned('service', name, s.Spec.Labels, this.instance);
    if (s.Spec.Mode?.Replicated?.Replicas)
      await this.docker.updateService(s.ID, s.Version?.Index ?? 0, { ...s.Spec, Mode: { Replicated: { Replicas: 0 } } });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const live = (await this.docker.serviceTasks(s.ID)).filter((t) => !ENDED.has(t.Status.State) && (!onNode || t.NodeID === onNode));
      if (!live.length) break;
      if (Date.now() > deadline) throw new Error(`service ${name}: its task is still ${live[0].Status.State} after ${timeoutMs} ms`);
      await setTimeout(300, undefined, { signal });
    }
    return (s.Spec.TaskTemplate as { ContainerSpec?: { Image?: string } }).ContainerSpec?.Image;
  }

  /**
   * Waits until a task of the service's current spec runs: a task made from the template it
   * has now (the same spec hash, forced-restart counter and node). Swarm changes a service's
   * UpdatedAt on every write (the end of its own rollout too), so times cannot say which
   * task is current. A change Swarm paused (the new task failed: FailureAction pause) fails
   * with Swarm's reason; a service scaled to nothing has nothing to wait for.
   */
  async awaitUpdate(name: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const service = await this.docker.inspectService(name);
      if (!service?.Spec) throw new Error(`service ${name} does not exist`);
      if (!service.Spec.Mode?.Replicated?.Replicas) return;
      const status = service.UpdateStatus;
      if (status?.State && !['updating', 'completed'].includes(status.State))
        throw new Error(`service ${name}: update ${status.State}: ${status.Message ?? ''}`.trim());
      const current = templateKey(service.Spec.TaskTemplate as SwarmTask['Spec']);
      const tasks = await this.docker.serviceTasks(service.ID);
      if (tasks.some((t) => t.DesiredState === 'running' && t.Status.State === 'running' && templateKey(t.Spec) === current)) return;
      if (Date.now() > deadline) {
        const t = tasks[0];
        throw new Error(
          `service ${name}: no task of its current spec runs after ${timeoutMs} ms (${t ? `${t.Status.State} ${t.Status.Err ?? ''}`.trim() : 'no task'})`,
        );
      }
      await setTimeout(300, undefined, { signal });
    }
  }

  /** A removed service's tasks leave its network a moment later: until then Swarm refuses to remove it. */
  private async removeNetworkOnceFree(id: string, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.stepTimeoutMs;
    for (;;) {
      try {
        return await this.docker.removeNetwork(id);
      } catch (e) {
        if (!/active endpoints|in use/i.test((e as Error).message) || Date.now() > deadline) throw e;
      }
      await setTimeout(500, undefined, { signal });
    }
  }

  private async ensureNetwork(n: NetworkSpec, changes: string[]): Promise<void> {
    const existing = await this.docker.findNetworks(n.name);
    if (existing.length > 0) return existing.forEach((e) => assertOwned('network', e.Name, e.Labels, this.instance));
    const id = await this.docker.createNetwork(overlayNetwork(n, this.mtu));
    // The manager allocates the subnet apart from the create call, and a subnet it cannot
    // have (it overlaps another network's) leaves a network no task can join.
    for (let i = 0; ; i++) {
      const [made] = await this.docker.findNetworks(n.name);
      if (made?.IPAM?.Config?.length) break;
      if (i >= 100) {
        await this.docker.removeNetwork(id);
        throw new Error(
          `overlay network ${n.name}: Swarm did not allocate its subnet ${n.subnet} within 30 s (does it overlap another network? the manager's log says); removed`,
        );
      }
      await setTimeout(300);
    }
    changes.push(`overlay network ${n.name} created`);
  }

  /** Secrets are immutable in Swarm: a new value is a new secret (its name carries the fingerprint). */
  private async ensureSecrets(c: ContainerSpec, changes: string[]): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    for (const [env, fingerprint] of Object.entries(c.secrets ?? {})) {
      const name = secretName(c.name, env, fingerprint);
      const id = await this.docker.secretId(name);
      if (id) {
        ids.set(name, id);
        continue;
      }
      const value = c.create.Env?.find((e) => e.startsWith(`${env}=`))?.slice(env.length + 1);
      if (value === undefined || value === fingerprint)
        throw new Error(`secret ${name} does not exist and this plan has no plaintext for ${env} (only a job's plan has)`);
      ids.set(name, await this.docker.createSecret(name, { ...c.create.Labels, [SECRET_OF]: c.name }, value));
      changes.push(`secret ${name} created`);
    }
    return ids;
  }

  private async ensureService(
    c: ContainerSpec,
    where: SwarmPlacement,
    aliases: string[],
    networks: string[],
    secretIds: Map<string, string>,
    changes: string[],
  ): Promise<void> {
    const spec = serviceSpec(c, where, aliases, networks);
    // Swarm refers to a secret by id and name both; the plan knows only the name.
    const task = spec.TaskTemplate as { ContainerSpec: { Secrets?: { SecretName?: string; SecretID?: string }[] } };
    for (const ref of task.ContainerSpec.Secrets ?? []) ref.SecretID = secretIds.get(ref.SecretName ?? '');
    const existing = await this.docker.inspectService(c.name);
    if (!existing) {
      await this.docker.createService(spec);
      changes.push(`service ${c.name} created`);
      return;
    }
    assertOwned('service', c.name, existing.Spec?.Labels, this.instance);
    const why = serviceDrift(existing.Spec, spec);
    if (!why) return;
    await this.docker.updateService(existing.ID, existing.Version?.Index ?? 0, spec);
    changes.push(`service ${c.name} updated (${why})`);
  }

  /** The service's secrets it no longer refers to (an old password) go once it is updated. */
  private async pruneSecrets(c: Pick<ContainerSpec, 'name' | 'secrets'>, changes: string[]): Promise<void> {
    const keep = new Set(Object.entries(c.secrets ?? {}).map(([env, fp]) => secretName(c.name, env, fp)));
    for (const s of await this.docker.listSecrets({ [SECRET_OF]: c.name, [LABEL.instance]: this.instance })) {
      const name = s.Spec?.Name ?? '';
      if (keep.has(name)) continue;
      await this.docker.removeSecret(s.ID);
      changes.push(`secret ${name} removed`);
    }
  }
}

/**
 * What makes a task current for its service: the spec hash of its container, the
 * forced-restart counter, and its node (a tenant moved to another node keeps its spec hash).
 */
export const templateKey = (t: SwarmTask['Spec'] | undefined) =>
  `${t?.ContainerSpec?.Labels?.[LABEL.specHash] ?? ''}/${t?.ForceUpdate ?? 0}/${(t?.Placement?.Constraints ?? []).join(',')}`;
