import type Docker from 'dockerode';

/** Removes every container, volume and network labelled with this Berth instance (and with `labels`, when given). */
export async function removeInstanceObjects(docker: Docker, instance: string, labels: Record<string, string> = {}): Promise<void> {
  const filters = { label: [`berth.instance=${instance}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)] };
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  const { Volumes } = await docker.listVolumes({ filters });
  await Promise.all((Volumes ?? []).map((v) => docker.getVolume(v.Name).remove({ force: true }).catch(() => undefined)));
  const networks = await docker.listNetworks({ filters });
  await Promise.all(networks.map((n) => docker.getNetwork(n.Id).remove().catch(() => undefined)));
}
