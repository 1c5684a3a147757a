import { chooseNode, free, newTenantNeed, offeredRoom, tenantReservation, type NodeRoom } from './placement';

const node = (hostname: string, memoryMb: number, reservedMb: number, extra: Partial<NodeRoom> = {}): NodeRoom => ({
  id: `id-${hostname}`,
  hostname,
  schedulable: true,
  capacity: { memoryMb, cpus: 4 },
  reserved: { memoryMb: reservedMb, cpus: 1 },
  ...extra,
});

describe('placement', () => {
  it('takes the node with the most free memory that fits', () => {
    const nodes = [node('a', 4096, 3000), node('b', 4096, 1000), node('c', 8192, 6000)];
    expect(chooseNode(nodes, { memoryMb: 1000, cpus: 1 })?.hostname).toBe('b');
    expect(free(nodes[2])).toEqual({ memoryMb: 2192, cpus: 3 });
  });

  it('skips nodes that are not schedulable or lack CPUs, and answers nothing when no node fits', () => {
    const nodes = [
      node('a', 8192, 0, { schedulable: false }),
      node('b', 4096, 0, { reserved: { memoryMb: 0, cpus: 3.5 } }),
      node('c', 2048, 0),
    ];
    expect(chooseNode(nodes, { memoryMb: 1024, cpus: 1 })?.hostname).toBe('c');
    expect(chooseNode(nodes, { memoryMb: 4096, cpus: 1 })).toBeUndefined();
    expect(chooseNode([], { memoryMb: 1, cpus: 0.1 })).toBeUndefined();
  });

  it('breaks ties by CPUs, then by hostname', () => {
    const a = node('a', 4096, 0);
    const b = node('b', 4096, 0, { reserved: { memoryMb: 0, cpus: 0.5 } });
    expect(chooseNode([a, b], { memoryMb: 1, cpus: 0.1 })?.hostname).toBe('b');
    expect(chooseNode([node('z', 4096, 0), node('y', 4096, 0)], { memoryMb: 1, cpus: 0.1 })?.hostname).toBe('y');
  });

  it("counts a tenant's database server and each site at its own limits or the tenant's ceiling", () => {
    const db = { memoryMb: 256, cpus: 0.5 };
    const ceiling = { memoryMb: 512, cpus: 1 };
    expect(
      tenantReservation(
        db,
        [
          { memoryMb: 128, cpus: null },
          { memoryMb: null, cpus: 0.25 },
        ],
        ceiling,
      ),
    ).toEqual({ memoryMb: 896, cpus: 1.75 });
    expect(newTenantNeed(db, ceiling)).toEqual({ memoryMb: 768, cpus: 1.5 });
    // Without sites, a tenant keeps the room of the first site it was placed for.
    expect(tenantReservation(db, [], ceiling)).toEqual(newTenantNeed(db, ceiling));
    expect(tenantReservation(db, [{ memoryMb: 64, cpus: 0.1 }], ceiling)).toEqual({ memoryMb: 320, cpus: 0.6 });
  });

  it("offers the labels' figures where they are numbers of zero or more, else the engine's", () => {
    const engine = { memoryMb: 7936, cpus: 2 };
    expect(offeredRoom({}, engine)).toEqual(engine);
    expect(offeredRoom({ memoryMb: '20000', cpus: '1.5' }, engine)).toEqual({ memoryMb: 20000, cpus: 1.5 });
    // 0 is no room, as the number says (it used to mean the engine's figure).
    expect(offeredRoom({ memoryMb: '0', cpus: '0' }, engine)).toEqual({ memoryMb: 0, cpus: 0 });
    expect(chooseNode([node('a', offeredRoom({ memoryMb: '0' }, engine).memoryMb, 0)], { memoryMb: 1, cpus: 1 })).toBeUndefined();
    // A label with no value, or one that is not a number of zero or more, is as if not set.
    for (const bad of ['', ' ', 'lots', '-5', 'Infinity', '1e4', '0x10'])
      expect(offeredRoom({ memoryMb: bad, cpus: bad }, engine)).toEqual(engine);
    // Memory in whole MiB (the API's figure is an integer); CPUs may be a fraction.
    expect(offeredRoom({ memoryMb: '2048.5', cpus: '0.5' }, engine)).toEqual({ memoryMb: 7936, cpus: 0.5 });
  });
});
