// @nestjs/common is ESM, which Jest cannot require here; the decorators do nothing in a unit test.
jest.mock('@nestjs/common', () => ({
  Injectable: () => () => undefined,
  Inject: () => () => undefined,
  Logger: class {
    warn() {}
  },
}));
import type { BerthConfig } from '../config/config';
import type { PrismaService } from '../database/prisma.service';
import type { DockerService, SwarmNode } from '../docker/docker.service';
import { Health } from '../generated/prisma/enums';
import { NodeWatchService } from './node-watch.service';
import type { SiteHealthService } from './site-health.service';

const node = (id: string, hostname: string, state: SwarmNode['Status']['State'], message?: string) =>
  ({ ID: id, Description: { Hostname: hostname }, Status: { State: state, Message: message } }) as SwarmNode;

function setUp(nodes: SwarmNode[], sitesOf: Record<string, string[]>) {
  const queries: unknown[] = [];
  const transitions: [string, Health, string][] = [];
  let listed = 0;
  let release!: () => void;
  const gate = { held: false, open: new Promise<void>((r) => (release = r)) };
  const docker = {
    listNodes: async () => {
      listed += 1;
      if (gate.held) await gate.open;
      return nodes;
    },
  } as unknown as DockerService;
  const prisma = {
    site: {
      findMany: async (q: { where: { tenant: { nodeId: string } } }) => {
        queries.push(q);
        return (sitesOf[q.where.tenant.nodeId] ?? []).map((id) => ({ id }));
      },
    },
  } as unknown as PrismaService;
  const health = {
    transition: async (id: string, to: Health, why: string) => void transitions.push([id, to, why]),
  } as unknown as SiteHealthService;
  const watch = new NodeWatchService({ BERTH_ENGINE: 'swarm', BERTH_NODE_WATCH_MS: 3000 } as BerthConfig, docker, prisma, health);
  return { watch, queries, transitions, listed: () => listed, gate, release: () => release() };
}

describe('NodeWatchService', () => {
  it("turns DOWN the running sites of a node that is not ready, saying why, and asks nothing of ready nodes' sites", async () => {
    const t = setUp([node('n1', 'host-1', 'ready'), node('n2', 'host-2', 'down', 'heartbeat failure')], { n1: ['a'], n2: ['b', 'c'] });
    // Down on one look is not enough; on the second it is.
    await t.watch.tick();
    expect(t.transitions).toEqual([]);
    await t.watch.tick();
    expect(t.transitions).toEqual([
      ['b', Health.DOWN, 'its node host-2 is down (heartbeat failure)'],
      ['c', Health.DOWN, 'its node host-2 is down (heartbeat failure)'],
    ]);
    // One query, for the node that is down, and only for sites meant to run that are not DOWN yet.
    expect(t.queries).toEqual([
      expect.objectContaining({
        where: { tenant: { nodeId: 'n2' }, desiredState: 'RUNNING', status: 'RUNNING', health: { not: Health.DOWN } },
      }),
    ]);
  });

  it('takes `unknown` (every node, while a new leader waits for heartbeats) for no outage', async () => {
    const nodes = [node('n2', 'host-2', 'unknown')];
    const t = setUp(nodes, { n2: ['b'] });
    await t.watch.tick();
    await t.watch.tick();
    await t.watch.tick();
    expect(t.transitions).toEqual([]);
    // Positive control: the same node disconnected, on two looks, is an outage.
    nodes[0] = node('n2', 'host-2', 'disconnected');
    await t.watch.tick();
    await t.watch.tick();
    expect(t.transitions).toEqual([['b', Health.DOWN, 'its node host-2 is disconnected']]);
  });

  it('does not start a second look while one is running', async () => {
    const t = setUp([node('n1', 'host-1', 'ready')], {});
    t.gate.held = true;
    const first = t.watch.tick();
    const second = t.watch.tick();
    expect(second).toBe(first);
    t.release();
    await first;
    expect(t.listed()).toBe(1);
    // Positive control: once it has ended, the next tick looks again.
    t.gate.held = false;
    await t.watch.tick();
    expect(t.listed()).toBe(2);
  });

  it('does not watch on a single engine', async () => {
    let calls = 0;
    const docker = { listNodes: async () => ((calls += 1), []) } as unknown as DockerService;
    const single = new NodeWatchService(
      { BERTH_ENGINE: 'docker', BERTH_NODE_WATCH_MS: 200 } as BerthConfig,
      docker,
      {} as PrismaService,
      {} as SiteHealthService,
    );
    single.start();
    await single.stop();
    expect(calls).toBe(0);
    // Positive control: a Swarm's watcher looks at once when started.
    const t = setUp([node('n1', 'host-1', 'ready')], {});
    t.watch.start();
    await t.watch.stop();
    expect(t.listed()).toBe(1);
  });
});
