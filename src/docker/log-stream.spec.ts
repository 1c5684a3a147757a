import Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';
import { followedLog } from './log-stream';

// dockerode's own demultiplexer, as DockerService.logs uses it (no engine is contacted).
const modem = new Docker({ socketPath: '/nonexistent/docker.sock' }).modem;
const follow = (raw: Readable, tty: boolean) => followedLog(raw, tty, (r, stdout, stderr) => modem.demuxStream(r, stdout, stderr));

/** One frame of Docker's multiplexed log format (stdout). */
const frame = (text: string) => {
  const body = Buffer.from(text);
  const header = Buffer.alloc(8);
  header.writeUInt8(1, 0);
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
};

/** Everything the reader gets, once its stream ends; rejects when it does not end within 2 s. */
function readToEnd(out: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`the log stream did not end; read so far: ${JSON.stringify(text)}`)), 2000);
    out.on('data', (c: Buffer) => (text += c.toString()));
    out.on('end', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}

describe.each([false, true])('followedLog (tty: %s)', (tty) => {
  const line = (text: string) => (tty ? Buffer.from(text) : frame(text));

  it("ends the reader's stream when the engine ends the log (positive control)", async () => {
    const raw = new PassThrough();
    const out = follow(raw, tty);
    const read = readToEnd(out);
    raw.write(line('one\n'));
    raw.end(line('two\n'));
    expect(await read).toBe('one\ntwo\n');
  });

  it("ends the reader's stream, without throwing, when the engine's stream fails (an engine restart)", async () => {
    const raw = new PassThrough();
    const out = follow(raw, tty);
    const read = readToEnd(out);
    raw.write(line('before the restart\n'));
    await new Promise((r) => setImmediate(r));
    expect(() => raw.emit('error', new Error('read ECONNRESET'))).not.toThrow();
    expect(await read).toBe('before the restart\n');
  });

  it("ends the reader's stream when the connection closes without an end", async () => {
    const raw = new PassThrough();
    const out = follow(raw, tty);
    const read = readToEnd(out);
    raw.write(line('last words\n'));
    await new Promise((r) => setImmediate(r));
    raw.destroy();
    expect(await read).toBe('last words\n');
  });

  it("closes the engine's stream when the reader goes away", async () => {
    const raw = new PassThrough();
    const out = follow(raw, tty);
    out.destroy();
    await new Promise((r) => raw.on('close', r));
    expect(raw.destroyed).toBe(true);
  });
});
