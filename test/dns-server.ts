import { createSocket, type Socket } from 'node:dgram';

/**
 * A DNS server for the tests, on loopback UDP: it answers TXT queries from a table the test
 * fills (`set`) and NXDOMAIN for every other name, as an authoritative server would. Enough
 * of RFC 1035 for Node's resolver; nothing else.
 */
export class TestDnsServer {
  private socket?: Socket;
  private readonly txt = new Map<string, string[]>();
  /** Names asked for, in order (to see that Berth asked). */
  readonly asked: string[] = [];

  set(name: string, ...values: string[]): void {
    this.txt.set(name.toLowerCase(), values);
  }

  async start(): Promise<string> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (msg, from) => {
      const answer = this.answer(msg);
      if (answer) socket.send(answer, from.port, from.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return `127.0.0.1:${socket.address().port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
  }

  private answer(query: Buffer): Buffer | undefined {
    if (query.length < 12) return undefined;
    let offset = 12;
    const labels: string[] = [];
    while (offset < query.length && query[offset] !== 0) {
      const len = query[offset];
      labels.push(query.subarray(offset + 1, offset + 1 + len).toString('ascii'));
      offset += len + 1;
    }
    const questionEnd = offset + 5; // the zero label, QTYPE, QCLASS
    if (questionEnd > query.length) return undefined;
    const name = labels.join('.').toLowerCase();
    const qtype = query.readUInt16BE(offset + 1);
    this.asked.push(name);
    const values = qtype === 16 ? this.txt.get(name) : undefined;
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.readUInt16BE(0), 0); // id
    header.writeUInt16BE(0x8400 | (this.txt.has(name) ? 0 : 3), 2); // response, authoritative, NOERROR or NXDOMAIN
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(values?.length ?? 0, 6);
    const answers = (values ?? []).map((v) => {
      const text = Buffer.from(v, 'utf8');
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      rr.writeUInt16BE(16, 2); // TXT
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(0, 6); // TTL 0: never cached
      rr.writeUInt16BE(text.length + 1, 10);
      return Buffer.concat([rr, Buffer.from([text.length]), text]);
    });
    return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
  }
}
