import fc from 'fast-check';
import { rewriteUrls } from './url-rewrite';

const OLD = 'https://old.example';
const NEW = 'https://www.new-domain.example';

/** PHP's serialize() for the values WordPress keeps: strings (byte lengths), numbers, booleans, null, arrays. */
type Php = string | number | boolean | null | Php[] | { [k: string]: Php };
function serialize(v: Php): string {
  if (v === null) return 'N;';
  if (typeof v === 'boolean') return `b:${v ? 1 : 0};`;
  if (typeof v === 'number') return Number.isInteger(v) ? `i:${v};` : `d:${v};`;
  if (typeof v === 'string') return `s:${Buffer.byteLength(v, 'utf8')}:"${v}";`;
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
  return `a:${entries.length}:{${entries.map(([k, x]) => (typeof k === 'number' ? `i:${k};` : serialize(k)) + serialize(x)).join('')}}`;
}
/** The same value with every string's URLs rewritten, to compare with. */
function replaced(v: Php): Php {
  if (typeof v === 'string') return v.split(OLD).join(NEW);
  if (Array.isArray(v)) return v.map(replaced);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replaced(x)]));
  return v;
}

describe('rewriteUrls', () => {
  it('rewrites plain text, JSON-escaped and URL-encoded forms', () => {
    expect(rewriteUrls(`<a href="${OLD}/about/">About</a>`, OLD, NEW)).toBe(`<a href="${NEW}/about/">About</a>`);
    expect(rewriteUrls('{"url":"https:\\/\\/old.example\\/wp-content\\/a.jpg"}', OLD, NEW)).toBe(
      '{"url":"https:\\/\\/www.new-domain.example\\/wp-content\\/a.jpg"}',
    );
    expect(rewriteUrls('?redirect=https%3A%2F%2Fold.example%2Fcart', OLD, NEW)).toBe(
      '?redirect=https%3A%2F%2Fwww.new-domain.example%2Fcart',
    );
  });

  it('leaves other hosts alone, even those that start with the same name', () => {
    const other = 'https://old.example.org/x https://old.examples/ https://old.example-2.com/';
    expect(rewriteUrls(other, OLD, NEW)).toBe(other);
    expect(rewriteUrls(`see ${OLD}.`, OLD, NEW)).toBe(`see ${NEW}.`);
  });

  it('keeps serialized values valid: lengths are recomputed in bytes, nested values too', () => {
    const value = serialize({ home: `${OLD}/`, widgets: [`<img src="${OLD}/ü.png">`, 3, true, null], inner: serialize([`${OLD}/x`]) });
    const out = rewriteUrls(value, OLD, NEW);
    expect(out).toBe(serialize({ home: `${NEW}/`, widgets: [`<img src="${NEW}/ü.png">`, 3, true, null], inner: serialize([`${NEW}/x`]) }));
    expect(out).toContain(`s:${Buffer.byteLength(`<img src="${NEW}/ü.png">`)}:`);
  });

  it('rewrites any serialized structure exactly as its strings would be rewritten (property)', () => {
    const text = fc.oneof(fc.string(), fc.constant(`${OLD}/p`), fc.constant(`x ${OLD} y`), fc.constant('é🙂'));
    const php: fc.Arbitrary<Php> = fc.letrec<{ v: Php }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        text,
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), tie('v'), { maxKeys: 4 }),
      ),
    })).v;
    fc.assert(
      fc.property(php, (v) => {
        // Strings holding quotes and braces are what break naive rewrites; lengths keep them readable.
        expect(rewriteUrls(serialize(v), OLD, NEW)).toBe(serialize(replaced(v)));
      }),
      { numRuns: 300 },
    );
  });

  it('leaves alone a value that looks serialized but cannot be read exactly (its lengths are wrong)', () => {
    expect(rewriteUrls(`s:3:"${OLD}";`, OLD, NEW)).toBe(`s:3:"${OLD}";`);
    expect(rewriteUrls(`a:1:{i:0;s:99:"${OLD}";}`, OLD, NEW)).toBe(`a:1:{i:0;s:99:"${OLD}";}`);
  });

  it('keeps references, enum cases and custom-serialized objects as they are, rewriting the strings around them', () => {
    const custom = 'C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}';
    const v = `a:4:{i:0;s:${OLD.length}:"${OLD}";i:1;r:2;i:2;E:11:"Suit:Hearts";i:3;${custom}}`;
    expect(rewriteUrls(v, OLD, NEW)).toBe(`a:4:{i:0;s:${NEW.length}:"${NEW}";i:1;r:2;i:2;E:11:"Suit:Hearts";i:3;${custom}}`);
  });

  it('does not rewrite the same host on another port', () => {
    expect(rewriteUrls(`${OLD}:8443/x and ${OLD}/y`, OLD, NEW)).toBe(`${OLD}:8443/x and ${NEW}/y`);
    expect(rewriteUrls(`${encodeURIComponent(`${OLD}:8443/x`)}`, OLD, NEW)).toBe(encodeURIComponent(`${OLD}:8443/x`));
  });

  it('returns a value without the URL unchanged', () => {
    const v = serialize({ a: 'nothing here' });
    expect(rewriteUrls(v, OLD, NEW)).toBe(v);
  });
});
