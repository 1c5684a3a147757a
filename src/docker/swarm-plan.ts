import type Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { LABEL, type ContainerSpec, type NetworkSpec } from './plan.types';

/**
 * The other way to apply a plan: the same containers as Swarm services. Everything that
 * differs between the two backends is here, in one place:
 *
 * | single engine (a container)            | Swarm (a service of one task)                         |
 * | -------------------------------------- | ----------------------------------------------------- |
 * | on the engine Berth talks to           | pinned to the tenant's node (`node.id==`)             |
 * | bridge network, `--link db:mysql`      | overlay network, the database's alias `mysql` on it   |
 * | VIP-less (a container has its own IP)  | `dnsrr` endpoint: no virtual IP (no IPVS needed)      |
 * | secrets in the environment             | Docker secrets, named by their fingerprint (`*_FILE`) |
 * | Memory, NanoCpus, PidsLimit            | the same as limits, and as reservations               |
 * | RestartPolicy always/no/on-failure:N   | Condition any/none/on-failure, with delay and attempts|
 * | SecurityOpt no-new-privileges          | none per service (API 1.41): the nodes' daemon.json   |
 * | tmpfs with rw,noexec,nosuid,size       | tmpfs mounts with a size (Docker's defaults: noexec, nosuid, nodev) |
 * | a port published on the host           | none: the edge reaches WordPress on the edge network  |
 * | exec in the container                  | exec through the node's own engine (no service exec)  |
 * | no health check (Berth probes)         | the same: a task is `running` once started            |
 */

/** Where the service's task runs and under which names its secrets are stored. */
export interface SwarmPlacement {
  nodeId: string;
}

/** The Docker secret holding the value of `env` of `spec` (its name changes with the value). */
export function secretName(container: string, env: string, fingerprint: string): string {
  const digest = createHash('sha256').update(fingerprint).digest('hex').slice(0, 12);
  const base = `${container}_${env.toLowerCase()}`;
  // Swarm allows 64 characters: a longer name keeps its start and a hash of the whole.
  if (base.length + 13 <= SECRET_NAME_MAX) return `${base}_${digest}`;
  const whole = createHash('sha256').update(base).digest('hex').slice(0, 8);
  return `${base.slice(0, SECRET_NAME_MAX - 13 - 9)}_${whole}_${digest}`;
}

const SECRET_NAME_MAX = 64;

const TMPFS_SIZE = /(?:^|,)size=(\d+)([kmg]?)(?:,|$)/i;
const UNIT: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function tmpfsBytes(options: string): number | undefined {
  const m = TMPFS_SIZE.exec(options);
  return m ? Number(m[1]) * UNIT[m[2].toLowerCase()] : undefined;
}

/** `{Name: 'on-failure', MaximumRetryCount: 5}` → Swarm's restart policy (5 s between attempts). */
export function swarmRestartPolicy(policy: { Name?: string; MaximumRetryCount?: number } | undefined) {
  const Delay = 5e9;
  switch (policy?.Name) {
    case 'on-failure':
      return { Condition: 'on-failure', Delay, MaxAttempts: policy.MaximumRetryCount ?? 0 };
    case 'no':
    case '':
    case undefined:
      return { Condition: 'none', Delay, MaxAttempts: 0 };
    default: // always, unless-stopped
      return { Condition: 'any', Delay, MaxAttempts: 0 };
  }
}

/** A plan's network as a Swarm overlay network (not attachable: only the tenant's services join it). */
export function overlayNetwork(n: NetworkSpec, mtu?: number): Docker.NetworkCreateOptions {
  return {
    Name: n.name,
    Driver: 'overlay',
    Attachable: false,
    CheckDuplicate: true,
    Labels: n.labels,
    IPAM: { Driver: 'default', Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Options: mtu ? { 'com.docker.network.driver.mtu': String(mtu) } : {},
  };
}

/**
 * A plan's container as a Swarm service of one task (none when the plan wants it stopped).
 * Secrets (`spec.secrets`) leave the environment: `NAME_FILE` points at the Docker secret
 * `secretName(...)`, which the applier creates with the plaintext.
 */
export function serviceSpec(spec: ContainerSpec, where: SwarmPlacement, aliases: string[] = [], others: string[] = []): Docker.ServiceSpec {
  const c = spec.create;
  const host = c.HostConfig ?? {};
  const secrets = spec.secrets ?? {};
  const env = (c.Env ?? []).flatMap((e) => {
    const key = e.slice(0, e.indexOf('='));
    return key in secrets ? [`${key}_FILE=/run/secrets/${secretName(spec.name, key, secrets[key])}`] : [e];
  });
  const networks = Object.keys(c.NetworkingConfig?.EndpointsConfig ?? (host.NetworkMode ? { [host.NetworkMode]: {} } : {}));
  const mounts: Docker.MountSettings[] = [
    ...(host.Mounts ?? []).map((m) => ({
      Type: m.Type,
      Source: m.Source,
      Target: m.Target,
      ReadOnly: m.ReadOnly ?? false,
      ...(m.Type === 'volume'
        ? { VolumeOptions: { NoCopy: false, Labels: { ...c.Labels }, DriverConfig: { Name: 'local', Options: {} } } }
        : {}),
    })),
    ...Object.entries(host.Tmpfs ?? {}).map(([target, options]) => ({
      Type: 'tmpfs' as const,
      Source: '',
      Target: target,
      // 1777, as a single engine's tmpfs: Swarm may ignore the mode (a known Swarm issue); the test reads it back.
      TmpfsOptions: { SizeBytes: tmpfsBytes(options) ?? 64 * 1024 ** 2, Mode: 0o1777 },
    })),
  ];
  const limits = { MemoryBytes: host.Memory, NanoCPUs: host.NanoCpus, Pids: host.PidsLimit };
  return {
    Name: spec.name,
    Labels: { ...c.Labels },
    TaskTemplate: {
      ContainerSpec: {
        Image: c.Image,
        Labels: { ...c.Labels },
        Env: env,
        Init: host.Init ?? false,
        ReadOnly: host.ReadonlyRootfs ?? false,
        CapabilityDrop: host.CapDrop,
        CapabilityAdd: host.CapAdd,
        Mounts: mounts,
        HealthCheck: c.Healthcheck,
        Secrets: Object.entries(secrets).map(([key, fingerprint]) => {
          const name = secretName(spec.name, key, fingerprint);
          return { SecretName: name, File: { Name: name, UID: '0', GID: '0', Mode: 0o444 } };
        }),
      },
      Resources: { Limits: limits, Reservations: { MemoryBytes: host.Memory, NanoCPUs: host.NanoCpus } },
      RestartPolicy: swarmRestartPolicy(host.RestartPolicy),
      Placement: { Constraints: [`node.id==${where.nodeId}`] },
      Networks: [...networks.map((Target) => ({ Target, Aliases: aliases })), ...others.map((Target) => ({ Target, Aliases: [] }))],
    },
    Mode: { Replicated: { Replicas: spec.running ? 1 : 0 } },
    // One task at a time on a local volume: the old task stops before the new one starts.
    UpdateConfig: { Parallelism: 1, Order: 'stop-first', FailureAction: 'pause' },
    EndpointSpec: { Mode: 'dnsrr' },
  } as Docker.ServiceSpec;
}

/** Why a service's current spec is not the planned one, or undefined when it is. */
export function serviceDrift(current: Docker.ServiceSpec | undefined, planned: Docker.ServiceSpec): string | undefined {
  if (current?.Labels?.[LABEL.specHash] !== planned.Labels?.[LABEL.specHash]) return 'spec changed';
  if (current?.Mode?.Replicated?.Replicas !== planned.Mode?.Replicated?.Replicas)
    return planned.Mode?.Replicated?.Replicas ? 'started' : 'stopped';
  const constraints = (s?: Docker.ServiceSpec) =>
    JSON.stringify((s?.TaskTemplate as { Placement?: { Constraints?: string[] } } | undefined)?.Placement?.Constraints ?? []);
  if (constraints(current) !== constraints(planned)) return 'moved to another node';
  // Swarm stores a network's id where the plan wrote its name; the name is in the spec hash,
  // so only the aliases (given apart from the plan) are compared.
  const aliases = (s?: Docker.ServiceSpec) =>
    JSON.stringify(
      ((s?.TaskTemplate as { Networks?: { Aliases?: string[] }[] } | undefined)?.Networks ?? []).map((n) => [...(n.Aliases ?? [])].sort()),
    );
  if (aliases(current) !== aliases(planned)) return 'network aliases changed';
  return undefined;
}
