import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeClient } from '../../test/certs';
import { currentEngineTls, readEngineTls, TLS_CHECK_MS } from './engine-tls';

/**
 * A renewed client certificate is taken without a restart, once whole: real certificates
 * (openssl, as scripts/swarm.sh makes them), a CA and two client identities it signed.
 */
describe('engine TLS material, renewed', () => {
  let work: string;
  let dir: string;
  /** Puts a file in the directory with a modification time of its own (a renewal's write). */
  let tick = 0;
  const put = (from: string, to: string) => {
    copyFileSync(join(work, from), join(dir, to));
    tick += 10;
    utimesSync(join(dir, to), 1_700_000_000 + tick, 1_700_000_000 + tick);
  };

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'berth-tls-'));
    dir = join(work, 'certs');
    mkdirSync(dir);
    const ca = makeCa(work, 'ca');
    makeClient(work, 'first', ca);
    makeClient(work, 'second', ca);
    put('ca.pem', 'ca.pem');
    put('first-cert.pem', 'cert.pem');
    put('first-key.pem', 'key.pem');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('keeps the material while the files are unchanged, takes a renewal once whole, and looks at most once a minute', () => {
    const first = readEngineTls(dir);
    const now = Date.now();
    expect(currentEngineTls(dir, { now })).toEqual({ tls: first });
    // Half a renewal: the new certificate, the old key. Not taken, and said why.
    put('second-cert.pem', 'cert.pem');
    const half = currentEngineTls(dir, { force: true });
    expect(half.tls).toBe(first);
    expect(half.problem).toMatch(/key values mismatch/);
    // Whole: taken.
    put('second-key.pem', 'key.pem');
    const renewed = currentEngineTls(dir, { force: true });
    expect(renewed.problem).toBeUndefined();
    expect(renewed.tls).not.toBe(first);
    expect(renewed.tls.cert.toString()).not.toBe(first.cert.toString());
    expect(readEngineTls(dir)).toBe(renewed.tls);
    // A later renewal (back to the first identity) is seen only once TLS_CHECK_MS has passed since the last look.
    const looked = Date.now();
    put('first-cert.pem', 'cert.pem');
    put('first-key.pem', 'key.pem');
    expect(currentEngineTls(dir, { now: looked + 1 }).tls).toBe(renewed.tls);
    const later = currentEngineTls(dir, { now: looked + TLS_CHECK_MS + 1 });
    expect(later.tls.cert.toString()).toBe(first.cert.toString());
  });

  it('a file gone keeps the last good material, saying which', () => {
    const before = readEngineTls(dir);
    rmSync(join(dir, 'key.pem'));
    const after = currentEngineTls(dir, { force: true });
    expect(after.tls).toBe(before);
    expect(after.problem).toMatch(/key\.pem/);
  });
});
