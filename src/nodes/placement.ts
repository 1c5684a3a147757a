/**
 * Where a tenant lives on a Swarm cluster: one node (its volumes are local to it), chosen by
 * room left for reservations. Pure: the nodes and what is booked on them come in, a choice
 * goes out; Swarm then enforces it with a placement constraint and each service's reservation.
 */

/** Memory in MiB and CPUs: what a service reserves, what a node offers. */
export interface Room {
  memoryMb: number;
  cpus: number;
}

export interface NodeRoom {
  id: string;
  hostname: string;
  /** Ready, active in Swarm, and not cordoned in Berth: may take a new tenant. */
  schedulable: boolean;
  capacity: Room;
  reserved: Room;
}

/**
 * What a node offers: the operator's figure from a node label where it is one (`berth.memory-mb`
 * a whole number of MiB, `berth.cpus` a number such as `2` or `1.5`), else what its engine
 * reports. `0` offers no room, as the number says; a label with no value, or one that is not
 * such a number (`lots`, `-5`, `1e4`, `0x10`, a fraction of a MiB), is as if not set.
 */
export function offeredRoom(labels: { memoryMb?: string; cpus?: string }, engine: Room): Room {
  return {
    memoryMb: labelNumber(labels.memoryMb, /^\d+$/) ?? engine.memoryMb,
    cpus: labelNumber(labels.cpus, /^\d+(\.\d+)?$/) ?? engine.cpus,
  };
}

const labelNumber = (v: string | undefined, form: RegExp): number | undefined =>
  v !== undefined && form.test(v.trim()) ? Number(v) : undefined;

export const free = (n: Pick<NodeRoom, 'capacity' | 'reserved'>): Room => ({
  memoryMb: n.capacity.memoryMb - n.reserved.memoryMb,
  cpus: round(n.capacity.cpus - n.reserved.cpus),
});

const round = (v: number) => Math.round(v * 1000) / 1000;

export const fits = (n: NodeRoom, need: Room): boolean => {
  const f = free(n);
  return f.memoryMb >= need.memoryMb && f.cpus >= need.cpus;
};

/**
 * The node a new tenant goes to: among the schedulable nodes with room for `need`, the one
 * with the most free memory (then CPUs, then the hostname, so the choice is stable). Undefined
 * when none has room.
 */
export function chooseNode(nodes: NodeRoom[], need: Room): NodeRoom | undefined {
  return nodes
    .filter((n) => n.schedulable && fits(n, need))
    .sort((a, b) => {
      const fa = free(a);
      const fb = free(b);
      return fb.memoryMb - fa.memoryMb || fb.cpus - fa.cpus || a.hostname.localeCompare(b.hostname);
    })[0];
}

/**
 * What a tenant books on its node: its database server and each of its sites at its limits
 * (the tenant's ceiling when it set none); a tenant without sites still books the first
 * site it was placed for.
 */
export function tenantReservation(db: Room, sites: { memoryMb: number | null; cpus: number | null }[], ceiling: Room): Room {
  const booked = sites.length ? sites : [{ memoryMb: null, cpus: null }];
  return booked.reduce<Room>(
    (sum, s) => ({ memoryMb: sum.memoryMb + (s.memoryMb ?? ceiling.memoryMb), cpus: round(sum.cpus + (s.cpus ?? ceiling.cpus)) }),
    { ...db },
  );
}

/** What placing a new tenant needs: its database server and room for one site at the tenant's ceiling. */
export const newTenantNeed = (db: Room, ceiling: Room): Room => tenantReservation(db, [], ceiling);
