import type Docker from 'dockerode';

/** Removes every container, volume and network that carries all of the given labels. */
async function removeLabelled(docker: Docker, labels: string[]): Promise<void> {
  const filters = { label: labels };
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    containers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
  const { Volumes } = await docker.listVolumes({ filters });
  await Promise.all(
    (Volumes ?? []).map((v) =>
      docker
        .getVolume(v.Name)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  const networks = await docker.listNetworks({ filters });
  await Promise.all(
    networks.map((n) =>
      docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined),
    ),
  );
}

/** Removes every container, volume and network labelled with this Berth instance (and with `labels`, when given). */
export async function removeInstanceObjects(docker: Docker, instance: string, labels: Record<string, string> = {}): Promise<void> {
  await removeLabelled(docker, [`berth.instance=${instance}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)]);
}

/**
 * Removes one tenant's containers, volumes and networks of this Berth instance, found by
 * their labels (never by name, so another instance's objects of the same slug are safe).
 */
export async function removeTenantObjects(docker: Docker, instance: string, tenantSlug: string): Promise<void> {
  await removeLabelled(docker, [`berth.instance=${instance}`, `berth.tenant=${tenantSlug}`]);
}
