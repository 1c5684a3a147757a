import { TestDnsServer } from '../../test/dns-server';
import { challengeName, parseServers, txtHolds } from './dns-check';

describe('txtHolds (over UDP, against a DNS server of the test)', () => {
  const dns = new TestDnsServer();
  let server: string;
  beforeAll(async () => {
    server = await dns.start();
  });
  afterAll(() => dns.stop());

  it('is true only when the record holds the token', async () => {
    dns.set(challengeName('shop.example.com'), 'other-value', 'tok-123');
    expect(await txtHolds('_berth-challenge.shop.example.com', 'tok-123', [server])).toBe(true);
    expect(await txtHolds('_berth-challenge.shop.example.com', 'tok-999', [server])).toBe(false);
    expect(dns.asked).toContain('_berth-challenge.shop.example.com');
  });

  it('is false, never an error, for a name without the record or a server that does not answer', async () => {
    expect(await txtHolds('_berth-challenge.nothing.example.com', 'tok-123', [server])).toBe(false);
    expect(await txtHolds('_berth-challenge.shop.example.com', 'tok-123', ['127.0.0.1:9'])).toBe(false);
  });

  it('names the record after the hostname, and reads a list of servers', () => {
    expect(challengeName('Shop.example.com'.toLowerCase())).toBe('_berth-challenge.shop.example.com');
    expect(parseServers(' 9.9.9.9, 127.0.0.1:5353 ,')).toEqual(['9.9.9.9', '127.0.0.1:5353']);
    expect(parseServers(undefined)).toEqual([]);
  });
});
