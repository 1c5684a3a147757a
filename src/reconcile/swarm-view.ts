import type Docker from 'dockerode';
import type { EngineView } from '../docker/plan-drift';

/**
 * What a Swarm has of the plans, as the engine view the drift rules read: each service as the
 * container it stands for (its name, labels, the networks its tasks join, `running` when it
 * should have a task), its overlay networks, and no volumes (not compared there).
 */
export function swarmView(
  services: Pick<Docker.Service, 'Spec'>[],
  networks: Pick<Docker.NetworkInspectInfo, 'Name' | 'Id'>[],
): EngineView {
  const nameOf = new Map(networks.map((n) => [n.Id, n.Name]));
  return {
    networks: new Map(networks.map((n) => [n.Name, n.Id])),
    containers: new Map(
      services.map((s) => {
        const targets = ((s.Spec?.TaskTemplate as { Networks?: { Target: string }[] } | undefined)?.Networks ?? []).map((n) => n.Target);
        return [
          s.Spec?.Name ?? '',
          {
            state: s.Spec?.Mode?.Replicated?.Replicas ? 'running' : 'exited',
            labels: s.Spec?.Labels ?? {},
            networks: Object.fromEntries(targets.map((id) => [nameOf.get(id) ?? id, id])),
          },
        ];
      }),
    ),
  };
}
