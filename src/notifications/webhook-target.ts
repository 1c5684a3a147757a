import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Where webhooks may go. A tenant chooses its webhook URLs, and Berth's workers sit next to
 * things no tenant should reach: the Docker Engine, PostgreSQL and Redis on loopback, every
 * tenant's containers on private bridge networks, a cloud's metadata service on link-local.
 * So webhooks are refused for addresses that are not public, unless the operator allows a
 * network (BERTH_WEBHOOK_ALLOWED_NETWORKS, CIDRs). The check is made on the addresses a
 * delivery actually connects to (after DNS), so a name that later resolves elsewhere (DNS
 * rebinding) gains nothing; registration also refuses literal addresses and localhost names.
 */
const NOT_PUBLIC_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services)
  ['172.16.0.0', 12], // private (Docker's default bridges)
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];
const NOT_PUBLIC_V6: [string, number][] = [
  ['::', 96], // unspecified and IPv4-compatible (::a.b.c.d)
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64: reaches IPv4 addresses through a translator
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['::ffff:0:0:0', 96], // IPv4-translated (SIIT)
  ['fc00::', 7], // unique local
  ['fec0::', 10], // site-local (deprecated)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
];

const NOT_PUBLIC = 'is not a public address (loopback, private, link-local or reserved); webhooks may not reach it';
/** The error code of a connection refused by the policy. */
export const REFUSED = 'EWEBHOOKREFUSED';

export class WebhookTargetPolicy {
  private readonly notPublic = new BlockList();

  /**
   * @param allowed networks webhooks may reach although they are not public
   * @param resolve how host names are resolved (DNS; replaced in unit tests)
   */
  constructor(
    private readonly allowed: BlockList = new BlockList(),
    private readonly resolve: (host: string, cb: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void = (
      host,
      cb,
    ) => dnsLookup(host, { all: true, verbatim: true }, cb),
  ) {
    for (const [net, prefix] of NOT_PUBLIC_V4) this.notPublic.addSubnet(net, prefix, 'ipv4');
    for (const [net, prefix] of NOT_PUBLIC_V6) this.notPublic.addSubnet(net, prefix, 'ipv6');
  }

  /** Why a webhook may not connect to this IP address, or undefined when it may. */
  refusal(address: string): string | undefined {
    const family = isIP(address);
    if (!family) return `${address} is not an IP address`;
    // BlockList checks an IPv4-mapped IPv6 address (::ffff:10.0.0.1) against IPv4 rules too.
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allowed.check(address, type)) return undefined;
    if (this.notPublic.check(address, type)) return `${address} ${NOT_PUBLIC}`;
    return undefined;
  }

  /**
   * Checks a URL when it is registered: refuses literal addresses that are not public and
   * localhost names. Other names are checked on each delivery, where it counts.
   */
  registrationRefusal(url: string): string | undefined {
    let host: string;
    try {
      host = new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
    } catch {
      return 'url is not a URL';
    }
    if (isIP(host)) return this.refusal(host);
    if (host === 'localhost' || host.endsWith('.localhost')) {
      return this.allowed.check('127.0.0.1', 'ipv4') ? undefined : `${host} is the local machine; webhooks may not reach it`;
    }
    return undefined;
  }

  /**
   * A `lookup` for http(s).request: resolves the name and fails the connection when any
   * address it resolves to is refused, so the address checked is the address connected to.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.resolve(hostname, (err, addresses) => {
      if (err) return callback(err, '', 4);
      const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
      const usable = family ? addresses.filter((a) => a.family === family) : addresses;
      const refused = addresses.find((a) => this.refusal(a.address));
      if (refused || !usable.length) {
        // The tenant reads this on the delivery: say why, not which internal address it is.
        const e: NodeJS.ErrnoException & { address?: string } = new Error(
          refused ? `${hostname} resolves to an address that ${NOT_PUBLIC}` : `${hostname} has no address`,
        );
        e.code = refused ? REFUSED : 'ENOTFOUND';
        e.address = refused?.address;
        return callback(e, '', 4);
      }
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
      else callback(null, usable[0].address, usable[0].family);
    });
  };
}

/**
 * POSTs a webhook body through the policy: literal addresses are checked here, names in
 * `lookup` as the connection is made. Redirects are not followed (a 3xx is the answer) and
 * the response body is read and dropped. Resolves with the status; rejects on network
 * errors, the timeout, or a refusal (error code {@link REFUSED}).
 */
export function postWebhook(
  policy: WebhookTargetPolicy,
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const literal = target.hostname.replace(/^\[|\]$/g, '');
    const refused = isIP(literal) ? policy.refusal(literal) : undefined;
    if (refused) return reject(Object.assign(new Error(refused), { code: REFUSED }));
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: policy.lookup,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        res.on('error', reject);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.resume();
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
