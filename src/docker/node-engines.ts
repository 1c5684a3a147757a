import { setTimeout as delay } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';
import { DockerService, nodeAddress, type SwarmNode } from './docker.service';

/** A service's running task: the node it runs on, that node's engine, and its container there. */
export interface RunningTask {
  nodeId: string;
  engine: DockerService;
  container: string;
}

/**
 * Each Swarm node's own Docker Engine (BERTH_SWARM_NODE_ENGINE), for what a manager does not
 * offer: Swarm has no exec into a service's task (there is no `docker service exec`) and no
 * API for a node's volumes, so SQL, WordPress's install and a site's volume go to the node
 * that holds them. Everything else goes through the manager (DockerService).
 */
@Injectable()
export class NodeEngines {
  private readonly engines = new Map<string, DockerService>();
  private readonly template?: string;

  constructor(
    @Inject(BERTH_CONFIG) private readonly config: BerthConfig,
    private readonly manager: DockerService,
  ) {
    this.template = config.BERTH_SWARM_NODE_ENGINE;
  }

  /** The engine of the node whose address the manager reports for `nodeId`. */
  async of(nodeId: string): Promise<DockerService> {
    return this.engineOf(nodeId, await this.node(nodeId));
  }

  /** The same for a node already listed (no list call). */
  engineOf(nodeId: string, node: SwarmNode | undefined): DockerService {
    if (!this.template) throw new Error('BERTH_SWARM_NODE_ENGINE is not set: the nodes’ own engines are out of reach');
    const address = nodeAddress(node);
    if (!address) throw new Error(`node ${nodeId} is not in the Swarm (or reports no address)`);
    const url = this.template.replace('{address}', address);
    let engine = this.engines.get(url);
    if (!engine) {
      engine = new DockerService({ ...this.config, DOCKER_HOST: url });
      this.engines.set(url, engine);
    }
    return engine;
  }

  /** The CPUs a node has, as the manager lists it; with no node, the manager's own engine's. */
  async cpusOf(nodeId: string | null): Promise<number> {
    if (!nodeId) return this.manager.cpus();
    const node = await this.node(nodeId);
    if (!node) throw new Error(`node ${nodeId} is not in the Swarm`);
    return (node.Description?.Resources?.NanoCPUs ?? 0) / 1e9;
  }

  /** The node as the manager lists it now; undefined when it is not in the Swarm. */
  async node(nodeId: string): Promise<SwarmNode | undefined> {
    return (await this.manager.listNodes()).find((n) => n.ID === nodeId);
  }

  /** The Swarm's nodes now, as the manager lists them. */
  list(): Promise<SwarmNode[]> {
    return this.manager.listNodes();
  }

  /**
   * Waits (up to `timeoutMs`) until `service` has a running task, and returns where: a task
   * is scheduled, its image found and its container started a moment after the service is
   * created or updated. A task that failed says why when time runs out. With `onNode`, only a
   * task on that node counts (a service just moved may still have its old task running elsewhere).
   */
  async runningTask(service: string, timeoutMs: number, signal?: AbortSignal, onNode?: string): Promise<RunningTask> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const { task, last } = await this.look(service, onNode);
      if (task) return task;
      if (Date.now() > deadline) throw new Error(`service ${service} has no running task after ${timeoutMs} ms (${last})`);
      await delay(300, undefined, { signal });
    }
  }

  /** The service's running task now, if it has one (none: stopped, or between tasks). */
  async runningTaskNow(service: string, onNode?: string): Promise<RunningTask | undefined> {
    return (await this.look(service, onNode)).task;
  }

  private async look(service: string, onNode?: string): Promise<{ task?: RunningTask; last: string }> {
    const tasks = (await this.manager.serviceTasks(service)).filter((t) => !onNode || t.NodeID === onNode);
    const task = tasks.find((t) => t.DesiredState === 'running' && t.Status.State === 'running');
    const container = task?.Status.ContainerStatus?.ContainerID;
    if (task?.NodeID && container) return { task: { nodeId: task.NodeID, engine: await this.of(task.NodeID), container }, last: 'running' };
    const newest = tasks[0];
    const none = onNode ? `no task on node ${onNode} yet` : 'no task yet';
    return { last: newest ? `task ${newest.Status.State}${newest.Status.Err ? `: ${newest.Status.Err}` : ''}` : none };
  }
}
