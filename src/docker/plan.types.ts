import type { ContainerCreateOptions } from 'dockerode';

/** The labels every Docker object Berth owns carries; Berth finds its objects by them. */
export const LABEL = {
  managedBy: 'berth.managed-by',
  instance: 'berth.instance',
  tenant: 'berth.tenant',
  site: 'berth.site',
  siteId: 'berth.site-id',
  role: 'berth.role',
  specHash: 'berth.spec-hash',
} as const;
export const MANAGED_BY = 'berth';

export type Role = 'network' | 'db' | 'db-volume' | 'wordpress' | 'volume';

export interface NetworkSpec {
  name: string;
  labels: Record<string, string>;
  subnet: string;
  gateway: string;
}

export interface VolumeSpec {
  name: string;
  labels: Record<string, string>;
}

export interface ContainerSpec {
  name: string;
  /** Full create options; their hash goes into the berth.spec-hash label. */
  create: ContainerCreateOptions & { name: string; Labels: Record<string, string> };
  running: boolean;
  /**
   * The environment variables that hold secrets, each with the fingerprint of its sealed
   * value: a single engine passes them as they are; Swarm as Docker secrets (`NAME_FILE`).
   */
  secrets?: Record<string, string>;
}

/** Docker objects of one scope (a tenant's shared objects, or one site's own). */
export interface Plan {
  networks: NetworkSpec[];
  volumes: VolumeSpec[];
  containers: ContainerSpec[];
}

export const emptyPlan = (): Plan => ({ networks: [], volumes: [], containers: [] });
