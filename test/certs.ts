import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Test certificates made with openssl, as scripts/swarm.sh makes the cluster's: EC P-256.
 * Each writes into `dir`: a CA as `<name>.pem` and `<name>-key.pem`; a client identity signed
 * by a CA as `<name>-cert.pem` and `<name>-key.pem`. Returns the paths it wrote.
 */
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const ssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

export function makeCa(dir: string, name: string): { cert: string; key: string } {
  ssl(dir, ['req', '-x509', ...EC, '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}-key.pem`, '-out', `${name}.pem`]);
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
}

export function makeClient(dir: string, name: string, ca: { cert: string; key: string }): { cert: string; key: string } {
  ssl(dir, ['req', '-new', ...EC, '-subj', `/CN=${name}`, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`]);
  ssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    `${name}-cert.pem`,
  ]);
  return { cert: join(dir, `${name}-cert.pem`), key: join(dir, `${name}-key.pem`) };
}
