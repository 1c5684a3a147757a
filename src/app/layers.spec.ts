import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

/**
 * The domains from the bottom up: a domain may import only from domains before it, so
 * dependencies point one way and no Nest module needs a forward reference. A new domain is
 * added where it belongs; the test names any import that points up.
 */
const ORDER = [
  'generated',
  'client',
  'cli',
  'common',
  'config',
  'database',
  'redis',
  'revocations',
  'metrics',
  'docker',
  'edge',
  'events',
  'auth',
  'notifications',
  'jobs',
  'nodes',
  'sites',
  'domains',
  'backups',
  'tenants',
  'reconcile',
  'monitor',
  'worker',
  'health',
  'app',
];

const SRC = resolve(__dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [path] : [];
  });
}

const domainOf = (file: string) => relative(SRC, file).split('/')[0];

describe('layers', () => {
  const files = sources(SRC).filter((f) => domainOf(f) !== 'generated' && domainOf(f) !== 'main.ts');

  it('knows every domain under src/', () => {
    const domains = new Set(files.map(domainOf));
    expect([...domains].filter((d) => !ORDER.includes(d))).toEqual([]);
  });

  it('has no import that points from a lower domain to a higher one', () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = domainOf(file);
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        const to = domainOf(resolve(dirname(file), spec));
        if (to !== from && ORDER.indexOf(to) > ORDER.indexOf(from)) upward.push(`${relative(SRC, file)} -> ${spec}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
