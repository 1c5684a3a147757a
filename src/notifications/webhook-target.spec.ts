import type { LookupAddress } from 'node:dns';
import { parseNetworks } from '../common/cidr';
import { REFUSED, WebhookTargetPolicy } from './webhook-target';

/** A resolver answering from a table, so names can resolve anywhere without DNS. */
const table =
  (answers: Record<string, string[]>) => (host: string, cb: (err: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) => {
    const ips = answers[host];
    if (!ips) return cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }), []);
    cb(
      null,
      ips.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };

function lookup(policy: WebhookTargetPolicy, host: string, all = true): Promise<{ err: NodeJS.ErrnoException | null; result: unknown }> {
  return new Promise((resolve) =>
    policy.lookup(host, { all }, (err: NodeJS.ErrnoException | null, address: unknown, family?: number) =>
      resolve({ err, result: all ? address : { address, family } }),
    ),
  );
}

describe('WebhookTargetPolicy', () => {
  const policy = new WebhookTargetPolicy();

  it.each([
    '127.0.0.1',
    '127.9.9.9',
    '10.0.0.1',
    '10.64.3.2',
    '172.17.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '198.18.0.1',
    '192.0.2.10',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    'fc00::5',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::FFFF:10.1.2.3',
    '::ffff:7f00:1',
    '::7f00:1',
    '64:ff9b::a00:1',
    '2002:a00:1::1',
    '::ffff:0:a00:1',
    'fec0::1',
  ])('refuses %s', (ip) => {
    expect(policy.refusal(ip)).toMatch(/not a public address/);
  });

  it.each(['93.184.215.14', '1.1.1.1', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:93.184.215.14'])(
    'lets %s through',
    (ip) => {
      expect(policy.refusal(ip)).toBeUndefined();
    },
  );

  it('lets through networks the operator allows, and only those', () => {
    const allowing = new WebhookTargetPolicy(parseNetworks('10.9.0.0/16, ::1/128'));
    expect(allowing.refusal('10.9.200.1')).toBeUndefined();
    expect(allowing.refusal('::ffff:10.9.0.1')).toBeUndefined();
    expect(allowing.refusal('::1')).toBeUndefined();
    expect(allowing.refusal('10.10.0.1')).toMatch(/not a public address/);
    expect(allowing.refusal('127.0.0.1')).toMatch(/not a public address/);
  });

  it('refuses at registration literal addresses that are not public and localhost names, not other names', () => {
    for (const url of [
      'http://127.0.0.1:8080/x',
      'http://[::1]/x',
      'https://169.254.169.254/latest/meta-data',
      'http://localhost:3000/',
      'http://api.LOCALHOST/',
      'http://[::ffff:7f00:1]/',
      'http://[::127.0.0.1]/',
      'http://0x7f000001/',
      'http://2130706433/',
    ]) {
      expect({ url, refused: policy.registrationRefusal(url) }).toEqual({
        url,
        refused: expect.stringMatching(/not a public address|local machine/),
      });
    }
    for (const url of ['https://hooks.example.com/berth', 'http://93.184.215.14/x', 'https://[2606:4700:4700::1111]/']) {
      expect(policy.registrationRefusal(url)).toBeUndefined();
    }
    expect(new WebhookTargetPolicy(parseNetworks('127.0.0.0/8')).registrationRefusal('http://localhost:3000/')).toBeUndefined();
  });

  it('refuses, as the connection is made, a name that resolves to an address that is not public, even among public ones', async () => {
    const p = new WebhookTargetPolicy(
      undefined,
      table({
        'rebind.example': ['93.184.215.14', '10.0.0.5'],
        'inside.example': ['169.254.169.254'],
        'ok.example': ['93.184.215.14', '2606:4700:4700::1111'],
      }),
    );
    for (const host of ['rebind.example', 'inside.example']) {
      const { err } = await lookup(p, host);
      expect(err?.code).toBe(REFUSED);
      expect(err?.message).toMatch(new RegExp(`^${host} resolves to an address that is not a public address`));
      // Which address is for the operator's log, not for the tenant reading the delivery.
      expect(err?.message).not.toMatch(/10\.0\.0\.5|169\.254/);
      expect((err as { address?: string }).address).toMatch(/^(10.0.0.5|169.254.169.254)$/);
    }
    expect((await lookup(p, 'ok.example')).result).toEqual([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:4700:4700::1111', family: 6 },
    ]);
    expect((await lookup(p, 'ok.example', false)).result).toEqual({ address: '93.184.215.14', family: 4 });
    expect((await lookup(p, 'missing.example')).err?.code).toBe('ENOTFOUND');
  });

  it('parses allowed networks and names a bad entry', () => {
    expect(() => parseNetworks('')).not.toThrow();
    expect(() => parseNetworks('10.0.0.0/8,fd00::/8')).not.toThrow();
    expect(() => parseNetworks('10.0.0.0/8, nonsense')).toThrow(/"nonsense" is not a CIDR/);
    expect(() => parseNetworks('10.0.0.0/33')).toThrow(/"10.0.0.0\/33" is not a CIDR/);
  });
});
