import { PassThrough, type Readable, type Writable } from 'node:stream';

/** Splits Docker's multiplexed stream (stdout and stderr frames) into the given streams. */
export type Demux = (raw: Readable, stdout: Writable, stderr: Writable) => void;

/**
 * A container's followed log from the engine as one text stream for a reader. However the
 * engine's stream stops (its end, a dropped connection, an engine restart), the reader's
 * stream ends; an 'error' on either side never goes unhandled (that would end the process).
 * When the reader goes away, the engine's stream is closed.
 */
export function followedLog(raw: Readable, tty: boolean, demux: Demux): PassThrough {
  const out = new PassThrough();
  if (tty) raw.pipe(out, { end: false });
  else demux(raw, out, out);
  const finish = () => {
    if (!out.writableEnded && !out.destroyed) out.end();
  };
  raw.on('end', finish);
  raw.on('close', finish);
  raw.on('error', finish);
  out.on('error', () => raw.destroy());
  out.on('close', () => raw.destroy());
  return out;
}
