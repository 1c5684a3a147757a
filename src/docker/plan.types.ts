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
}

/** Docker objects of one scope (a tenant's shared objects, or one site's own). */
export interface Plan {
  networks: NetworkSpec[];
  volumes: VolumeSpec[];
  containers: ContainerSpec[];
}

export const emptyPlan = (): Plan => ({ networks: [], volumes: [], containers: [] });
