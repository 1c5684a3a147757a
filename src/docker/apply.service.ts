import { Inject, Injectable, Logger } from '@nestjs/common';
import { BerthError, ErrorCode } from '../common/errors';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { DockerService, isConflict, type ContainerInfo } from './docker.service';
import { replacementReason } from './plan-drift';
import { LABEL, MANAGED_BY, type ContainerSpec, type NetworkSpec, type Plan, type VolumeSpec } from './plan.types';

/** A container as an apply left it: what it made or found, without asking the engine again. */
export interface AppliedContainer {
  id: string;
  name: string;
}

/** What one apply changed; an apply of an unchanged plan reports nothing. */
export interface ApplyReport {
  changes: string[];
  containers: Record<string, AppliedContainer>;
}

/**
 * Makes the Docker Engine match a plan, idempotently: objects are found by name and
 * checked to be this instance's by label; what is missing is created, a container whose spec
 * hash differs is replaced, and (for a scope) what the plan no longer has is removed.
 */
@Injectable()
export class ApplyService {
  private readonly logger = new Logger('Apply');

  private readonly instance: string;

  constructor(
    private readonly docker: DockerService,
    @Inject(BERTH_CONFIG) config: Pick<BerthConfig, 'BERTH_INSTANCE'>,
  ) {
    this.instance = config.BERTH_INSTANCE;
  }

  /** Once `signal` aborts (the job's step timed out or lost its lock), no further object is changed. */
  async apply(plan: Plan, scope?: Record<string, string>, signal?: AbortSignal): Promise<ApplyReport> {
    const report: ApplyReport = { changes: [], containers: {} };
    signal?.throwIfAborted();
    await Promise.all(plan.networks.map((n) => this.ensureNetwork(n, report)));
    signal?.throwIfAborted();
    await Promise.all(plan.volumes.map((v) => this.ensureVolume(v, report)));
    for (const c of plan.containers) {
      signal?.throwIfAborted();
      report.containers[c.name] = await this.ensureContainer(c, report);
    }
    signal?.throwIfAborted();
    if (scope) await this.prune(plan, scope, report);
    return report;
  }

  private async ensureNetwork(spec: NetworkSpec, report: ApplyReport): Promise<void> {
    const existing = await this.docker.findNetworks(spec.name);
    if (existing.length > 0) {
      existing.forEach((n) => assertOwned('network', n.Name, n.Labels, this.instance));
      return;
    }
    await this.docker.createNetwork({
      Name: spec.name,
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: spec.labels,
      IPAM: { Driver: 'default', Config: [{ Subnet: spec.subnet, Gateway: spec.gateway }] },
    });
    report.changes.push(`network ${spec.name} created`);
  }

  private async ensureVolume(spec: VolumeSpec, report: ApplyReport): Promise<void> {
    const existing = await this.docker.inspectVolume(spec.name);
    if (existing) {
      assertOwned('volume', spec.name, existing.Labels, this.instance);
      // A site's volume under the same name as a deleted site's that is still there (its
      // removal failed, or its node was down): that site's files are never handed to this one.
      const want = spec.labels[LABEL.siteId];
      const has = existing.Labels?.[LABEL.siteId];
      if (want && has && want !== has)
        throw new BerthError(
          ErrorCode.DOCKER_OBJECT_CLASH,
          `${ErrorCode.DOCKER_OBJECT_CLASH}: Docker volume ${spec.name} belongs to another site (${has}), not to this one; refusing to use it (the reconciler removes it once no live site claims it)`,
          { object: spec.name, kind: 'volume', owner: has },
        );
      return;
    }
    await this.docker.createVolume(spec.name, spec.labels);
    report.changes.push(`volume ${spec.name} created`);
  }

  /**
   * Makes one container match its spec. The engine is asked only what Berth does not know:
   * a container it has just created, started or stopped is not inspected again.
   */
  private async ensureContainer(spec: ContainerSpec, report: ApplyReport): Promise<AppliedContainer> {
    let info = await this.docker.inspectContainer(spec.name);
    if (info) assertOwned('container', spec.name, info.Config.Labels, this.instance);
    const reason = info && (await this.replacementReason(info, spec));
    // The image is checked before anything is removed: a bad image leaves the container be.
    if (!info || reason) await this.requireImage(spec, info);
    if (info && reason) {
      await this.docker.removeContainer(info.Id);
      report.changes.push(`container ${spec.name} replaced (${reason})`);
      info = undefined;
    }
    let id: string;
    let running: boolean;
    if (info) {
      id = info.Id;
      running = info.State.Running;
    } else {
      try {
        id = await this.docker.createContainer(spec.create);
        running = false;
        report.changes.push(`container ${spec.name} created`);
      } catch (e) {
        // Another apply created it between our inspect and create: adopt it, once we know
        // it is this instance's.
        if (!isConflict(e)) throw e;
        const adopted = await this.mustInspect(spec.name);
        assertOwned('container', spec.name, adopted.Config.Labels, this.instance);
        id = adopted.Id;
        running = adopted.State.Running;
      }
    }
    if (spec.running && !running) {
      id = await this.start(spec, id, report);
    } else if (!spec.running && running) {
      await this.docker.stopContainer(id);
      report.changes.push(`container ${spec.name} stopped`);
    }
    return { id, name: spec.name };
  }

  private async requireImage(spec: ContainerSpec, current?: ContainerInfo): Promise<void> {
    const image = spec.create.Image;
    const missing = image ? await this.docker.ensureImage(image) : 'no image given';
    if (!missing) return;
    const kept = current ? `; container ${spec.name} was left as it was (${current.State.Status})` : '';
    throw new BerthError(
      ErrorCode.IMAGE_UNAVAILABLE,
      `${ErrorCode.IMAGE_UNAVAILABLE}: image ${image ?? '(none)'} is not on the Docker Engine and could not be pulled (${missing})${kept}`,
    );
  }

  /**
   * Starts a stopped container. After an Engine restart, containerd can still hold a task for
   * a container the Engine sees as stopped, and every start then fails with "task ...: already
   * exists": such a container is made anew (its data lives on named volumes), once.
   */
  private async start(spec: ContainerSpec, id: string, report: ApplyReport): Promise<string> {
    try {
      await this.docker.startContainer(id);
      report.changes.push(`container ${spec.name} started`);
      return id;
    } catch (e) {
      if (!/already exists/i.test((e as Error).message)) throw e;
      await this.docker.removeContainer(id);
      const made = await this.docker.createContainer(spec.create);
      await this.docker.startContainer(made);
      report.changes.push(`container ${spec.name} replaced (the Engine kept a stale task for it)`);
      return made;
    }
  }

  /** Why the container must be made anew (see {@link replacementReason}); the network is looked up only when the spec names one. */
  private async replacementReason(info: ContainerInfo, spec: ContainerSpec): Promise<string | undefined> {
    const net = spec.create.HostConfig?.NetworkMode;
    const current = net ? (await this.docker.findNetworks(net))[0] : undefined;
    const networks = Object.fromEntries(Object.entries(info.NetworkSettings.Networks ?? {}).map(([name, n]) => [name, n.NetworkID]));
    const ids = new Map(current && net ? [[net, current.Id]] : []);
    return replacementReason(spec, { labels: info.Config.Labels, networks }, ids)?.reason;
  }

  private async mustInspect(name: string): Promise<ContainerInfo> {
    const info = await this.docker.inspectContainer(name);
    if (!info) throw new BerthError(ErrorCode.UNAVAILABLE, `container ${name} vanished while being applied`);
    return info;
  }

  /** Removes the objects carrying the scope's labels that the plan does not name; never another instance's. */
  private async prune(plan: Plan, scope: Record<string, string>, report: ApplyReport): Promise<void> {
    const labels = { ...scope, [LABEL.managedBy]: MANAGED_BY, [LABEL.instance]: this.instance };
    const keep = new Set([...plan.containers, ...plan.volumes, ...plan.networks].map((o) => o.name));
    for (const c of await this.docker.listContainers(labels)) {
      const name = c.Names[0]?.replace(/^\//, '') ?? c.Id;
      if (keep.has(name)) continue;
      await this.docker.removeContainer(c.Id);
      report.changes.push(`container ${name} removed`);
    }
    for (const v of await this.docker.listVolumes(labels)) {
      if (keep.has(v.Name)) continue;
      await this.docker.removeVolume(v.Name);
      report.changes.push(`volume ${v.Name} removed`);
    }
    for (const n of await this.docker.listNetworks(labels)) {
      if (keep.has(n.Name)) continue;
      await this.docker.removeNetwork(n.Id);
      report.changes.push(`network ${n.Name} removed`);
    }
    if (report.changes.length) this.logger.debug(report.changes.join('; '));
  }
}

/**
 * An object under one of this instance's names that another instance (or no Berth at all)
 * owns is never replaced, started, stopped or removed: the job fails with a clash instead.
 */
export function assertOwned(
  kind: 'container' | 'network' | 'volume' | 'service',
  name: string,
  labels: Record<string, string> | null | undefined,
  instance: string,
): void {
  const clash = (why: string, owner?: string) =>
    new BerthError(ErrorCode.DOCKER_OBJECT_CLASH, `${ErrorCode.DOCKER_OBJECT_CLASH}: Docker ${kind} ${name} ${why}; refusing to touch it`, {
      object: name,
      kind,
      ...(owner ? { owner } : {}),
    });
  if (labels?.[LABEL.managedBy] !== MANAGED_BY) throw clash('exists but is not managed by Berth');
  const owner = labels[LABEL.instance];
  if (owner === undefined) throw clash(`belongs to a Berth installation without an instance label, not to this instance "${instance}"`);
  if (owner !== instance) throw clash(`belongs to Berth instance "${owner}", not to this instance "${instance}"`, owner);
}
