import { createServer, type AddressInfo, type Socket } from 'node:net';
import {
  createSiteDatabaseSql,
  databaseAddress,
  dropSiteDatabaseSql,
  parseGreeting,
  readGreeting,
  UnreachableError,
  waitUntilReady,
} from './site-database';

describe('site database SQL', () => {
  const id = { dbName: 'wp_0123456789abcdef', dbUser: 'wp_0123456789abcdef', dbPassword: 'Abc_def-0123456789xyz' };

  it('creates the database and a user with rights on that database only', () => {
    const sql = createSiteDatabaseSql(id);
    expect(sql).toContain('CREATE DATABASE IF NOT EXISTS `wp_0123456789abcdef`');
    expect(sql).toContain("CREATE USER IF NOT EXISTS 'wp_0123456789abcdef'@'%'");
    expect(sql).toContain("GRANT ALL PRIVILEGES ON `wp_0123456789abcdef`.* TO 'wp_0123456789abcdef'@'%'");
    expect(sql).not.toMatch(/ON \*\.\*/);
  });

  it('drops both', () => {
    expect(dropSiteDatabaseSql(id)).toBe("DROP DATABASE IF EXISTS `wp_0123456789abcdef`;\nDROP USER IF EXISTS 'wp_0123456789abcdef'@'%'");
  });

  it('refuses identifiers or passwords that could break out of the SQL', () => {
    expect(() => createSiteDatabaseSql({ ...id, dbName: 'x`; DROP DATABASE mysql; --' })).toThrow();
    expect(() => createSiteDatabaseSql({ ...id, dbPassword: "pw' OR '1'='1-long-enough" })).toThrow();
  });
});

/** A MariaDB-like server on loopback that answers each connection as `answer(n)` says. */
async function fakeServer(
  answer: (n: number) => Buffer | 'silent' | 'close',
): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const a = answer(++n);
    if (a === 'close') socket.end();
    else if (a !== 'silent') socket.write(a);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => n,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const packet = (payload: Buffer) =>
  Buffer.concat([Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16, 0]), payload]);
const handshake = packet(Buffer.concat([Buffer.from([0x0a]), Buffer.from('10.11.6-MariaDB-0+deb12u1\0', 'latin1'), Buffer.alloc(40, 1)]));
const tooMany = packet(Buffer.concat([Buffer.from([0xff, 0x10, 0x04]), Buffer.from('Too many connections')]));

describe('parseGreeting', () => {
  it('reads the server version from a handshake packet', () => {
    expect(parseGreeting(handshake)).toEqual({ ok: true, version: '10.11.6-MariaDB-0+deb12u1' });
  });

  it('reads an error packet as not ready, with its code and message', () => {
    expect(parseGreeting(tooMany)).toEqual({ ok: false, error: 'server answered error 1040: Too many connections' });
  });

  it('waits for the rest of a packet that arrived in pieces', () => {
    expect(parseGreeting(handshake.subarray(0, 3))).toBeUndefined();
    expect(parseGreeting(handshake.subarray(0, 10))).toBeUndefined();
  });
});

describe('waitUntilReady', () => {
  const fast = { tcp: 10, exec: 20 };
  const probe = (port: number, viaExec = jest.fn(async (): Promise<void> => undefined)) => ({
    name: 'db_x',
    address: async () => '127.0.0.1',
    port,
    viaExec,
    intervalMs: fast,
  });

  it('returns once the server greets, without exec', async () => {
    const server = await fakeServer((n) => (n < 3 ? tooMany : handshake));
    try {
      const p = probe(server.port);
      await waitUntilReady(p, 5000);
      expect(server.connections()).toBe(3);
      expect(p.viaExec).not.toHaveBeenCalled();
    } finally {
      await server.close();
    }
  });

  it('keeps waiting while nothing listens or the server hangs up, and says why when time is up', async () => {
    const server = await fakeServer(() => 'close');
    try {
      await expect(waitUntilReady(probe(server.port), 300)).rejects.toThrow(
        /db_x did not become ready in 300 ms: .*closed the connection without a greeting/,
      );
      expect(server.connections()).toBeGreaterThan(1);
    } finally {
      await server.close();
    }
    await expect(waitUntilReady(probe(server.port), 200)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('treats a connection that never greets as not ready', async () => {
    const server = await fakeServer(() => 'silent');
    try {
      await expect(readGreeting('127.0.0.1', server.port, 200)).resolves.toEqual({
        ok: false,
        error: expect.stringMatching(/no greeting/),
      });
    } finally {
      await server.close();
    }
  });

  it('falls back to exec when the address cannot be reached', async () => {
    let calls = 0;
    const viaExec = jest.fn(async () => {
      if (++calls < 3) throw new Error('not yet');
    });
    const greet = jest.fn(async (): Promise<never> => {
      throw new UnreachableError('no TCP connection to 10.64.2.2:3306 within 3000 ms');
    });
    await waitUntilReady({ ...probe(3306, viaExec), greet }, 5000);
    expect(greet).toHaveBeenCalledTimes(1);
    expect(viaExec).toHaveBeenCalledTimes(3);
  });

  it('reads the address again, without exec, when the one it kept stops being reachable (the server restarted elsewhere)', async () => {
    const addresses = ['10.64.2.2', '10.64.2.3'];
    const address: jest.Mock<Promise<string>, []> = jest.fn(async () => addresses[Math.min(address.mock.calls.length - 1, 1)]);
    const viaExec = jest.fn(async (): Promise<void> => undefined);
    const greet = jest.fn(async (host: string) => {
      if (host === '10.64.2.3') return { ok: true as const, version: '10.11' };
      // Refused at first (the server starting), then gone from that address.
      if (greet.mock.calls.length === 1) return { ok: false as const, error: 'connect ECONNREFUSED' };
      throw new UnreachableError(`no TCP connection to ${host}:3306 within 3000 ms`);
    });
    await waitUntilReady({ ...probe(3306, viaExec), address, greet }, 5000);
    expect(greet.mock.calls.map((c) => c[0])).toEqual(['10.64.2.2', '10.64.2.2', '10.64.2.3']);
    expect(address).toHaveBeenCalledTimes(2);
    expect(viaExec).not.toHaveBeenCalled();
  });

  it('stops as soon as its signal is aborted', async () => {
    const server = await fakeServer(() => 'silent');
    const controller = new AbortController();
    try {
      const started = Date.now();
      const waiting = waitUntilReady(probe(server.port), 60_000, controller.signal);
      setTimeout(() => controller.abort(), 50);
      await expect(waiting).rejects.toThrow(/abort/i);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await server.close();
    }
  });
});

describe('databaseAddress', () => {
  const info = (running: boolean, networks: Record<string, { IPAddress: string }>) => ({
    State: { Running: running, Status: running ? 'running' : 'exited' },
    HostConfig: { NetworkMode: 'berth_acme' },
    NetworkSettings: { Networks: networks },
  });
  const docker = (i: unknown) => ({ inspectContainer: async () => i as never });

  it("takes the address on the container's own network", async () => {
    await expect(
      databaseAddress(docker(info(true, { bridge: { IPAddress: '172.17.0.5' }, berth_acme: { IPAddress: '10.64.2.2' } })), 'db_acme'),
    ).resolves.toBe('10.64.2.2');
  });

  it('refuses a container that is missing or not running', async () => {
    await expect(databaseAddress(docker(undefined), 'db_acme')).rejects.toThrow(/does not exist/);
    await expect(databaseAddress(docker(info(false, {})), 'db_acme')).rejects.toThrow(/not running/);
  });
});
