import { stableStringify } from './json';

/** The first implementation, whose output every container's spec hash was made from. */
function reference(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A random JSON-like value (with undefined, dates, unicode keys), deterministic from the seed. */
function randomValue(next: () => number, depth = 0): unknown {
  const r = next();
  if (depth > 3 || r < 0.3) {
    const leaves = [null, undefined, true, false, 0, -1.5, 1e21, 'x', 'é"\\\n', '', new Date(Math.floor(next() * 1e12))];
    return leaves[Math.floor(next() * leaves.length)];
  }
  if (r < 0.55) return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
  const keys = ['b', 'a', 'B', 'é', 'Ω', 'a1', '10', '2', '', 'z"q', '\u{1F600}', 'ﬀ'];
  const out: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 6); i > 0; i--) out[keys[Math.floor(next() * keys.length)]] = randomValue(next, depth + 1);
  return out;
}

describe('stableStringify', () => {
  it('sorts keys at every depth and leaves out undefined members', () => {
    expect(stableStringify({ b: 1, a: { d: [3, { y: 1, x: undefined }], c: null }, u: undefined })).toBe(
      '{"a":{"c":null,"d":[3,{"y":1}]},"b":1}',
    );
    expect(stableStringify([undefined, 1])).toBe('[,1]');
    expect(stableStringify(new Date(0))).toBe('"1970-01-01T00:00:00.000Z"');
  });

  it('gives exactly the output of the first implementation (spec hashes must not change)', () => {
    let seed = 42;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 5000; i++) {
      const v = randomValue(next);
      expect(stableStringify(v)).toBe(reference(v));
    }
  });
});
