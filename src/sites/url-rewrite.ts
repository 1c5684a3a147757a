/**
 * Rewrites a site's URL in values as WordPress stores them, for a change of primary domain
 * and for clones: in plain text, in JSON-escaped form (`https:\/\/old.example`), URL-encoded
 * (`https%3A%2F%2Fold.example`), and inside PHP-serialized values, whose string lengths are
 * recomputed (in bytes) so that PHP can still read them. GUIDs are never to be rewritten: the
 * caller leaves the `guid` column alone. Pure; no I/O.
 */

/** Every form in which `from` may appear, each with its replacement. */
function forms(from: string, to: string): [string, string][] {
  const json = (s: string) => s.replace(/\//g, '\\/');
  return [
    [json(from), json(to)],
    [encodeURIComponent(from), encodeURIComponent(to)],
    [from, to],
  ];
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Replaces `from` where it is the whole origin: not `https://old.example.org` for `https://old.example`. */
function replaceText(text: string, from: string, to: string): string {
  let out = text;
  for (const [f, t] of forms(from, to)) {
    // The origin ends where a hostname cannot go on (a dot followed by a name would go on).
    // Not when more of a host or a port follows: https://old.example.org, https://old.example:8443.
    out = out.replace(new RegExp(`${escapeRegExp(f)}(?![A-Za-z0-9-]|\\.[A-Za-z0-9]|:\\d|%3A\\d)`, 'g'), () => t);
  }
  return out;
}

/** A parser for PHP's serialize() format over bytes; throws on anything it cannot read exactly. */
class Serialized {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  static rewrite(value: string, from: string, to: string): string | undefined {
    const parser = new Serialized(Buffer.from(value, 'utf8'));
    try {
      const out = parser.value(from, to);
      return parser.pos === parser.buf.length ? out : undefined;
    } catch {
      return undefined;
    }
  }

  private until(ch: string): string {
    const end = this.buf.indexOf(ch, this.pos, 'latin1');
    if (end === -1) throw new Error(`expected ${ch}`);
    const text = this.buf.toString('latin1', this.pos, end);
    this.pos = end + 1;
    return text;
  }

  private expect(text: string): void {
    if (this.buf.toString('latin1', this.pos, this.pos + text.length) !== text) throw new Error(`expected ${text}`);
    this.pos += text.length;
  }

  private count(ch: string): number {
    const n = this.until(ch);
    if (!/^\d+$/.test(n)) throw new Error('expected a count');
    return Number(n);
  }

  /** Exactly `len` bytes, which must be whole UTF-8 characters. */
  private bytes(len: number): string {
    const text = this.buf.toString('utf8', this.pos, this.pos + len);
    if (Buffer.byteLength(text, 'utf8') !== len) throw new Error('length does not match');
    this.pos += len;
    return text;
  }

  /** `<len>:"<text>"` and the character after it (s:, E:, C:, O:); returns the text. */
  private quoted(after: string): string {
    const len = this.count(':');
    this.expect('"');
    const text = this.bytes(len);
    this.expect(`"${after}`);
    return text;
  }

  /** `{...}` holding n key/value pairs (arrays and objects), each rewritten. */
  private members(n: number, from: string, to: string): string {
    this.expect('{');
    let body = '';
    for (let i = 0; i < n * 2; i++) body += this.value(from, to);
    this.expect('}');
    return body;
  }

  value(from: string, to: string): string {
    const type = this.buf.toString('latin1', this.pos, this.pos + 2);
    if (type === 'N;') {
      this.pos += 2;
      return 'N;';
    }
    this.pos += 2;
    switch (type) {
      // scalars, and references to other values (r:, R:): kept as they are
      case 'b:':
      case 'i:':
      case 'd:':
      case 'r:':
      case 'R:':
        return `${type}${this.until(';')};`;
      case 'E:': {
        // an enum case (PHP 8.1): "Class:Case", never a URL
        const name = this.quoted(';');
        return `E:${Buffer.byteLength(name, 'utf8')}:"${name}";`;
      }
      case 'C:': {
        // an object with its own serialization format: its bytes are kept, unread
        const cls = this.quoted(':');
        const n = this.count(':');
        this.expect('{');
        const data = this.bytes(n);
        this.expect('}');
        return `C:${Buffer.byteLength(cls, 'utf8')}:"${cls}":${n}:{${data}}`;
      }
      case 's:': {
        // A string may hold serialized data or JSON of its own: rewritten the same way.
        const rewritten = rewriteUrls(this.quoted(';'), from, to);
        return `s:${Buffer.byteLength(rewritten, 'utf8')}:"${rewritten}";`;
      }
      case 'a:': {
        const n = this.count(':');
        return `a:${n}:{${this.members(n, from, to)}}`;
      }
      case 'O:': {
        const cls = this.quoted(':');
        const n = this.count(':');
        return `O:${Buffer.byteLength(cls, 'utf8')}:"${cls}":${n}:{${this.members(n, from, to)}}`;
      }
      default:
        throw new Error(`unknown type ${type}`);
    }
  }
}

const looksSerialized = (v: string) => /^(a:\d+:\{|[OCE]:\d+:"|s:\d+:"|[bidrR]:[^;]*;$|N;$)/.test(v);

/**
 * `value` with every occurrence of the origin `from` (such as `https://old.example`) replaced
 * by `to`. A PHP-serialized value stays valid (lengths recomputed); one that looks serialized
 * but cannot be read exactly is left as it is: rewriting it as text could break a value PHP
 * reads in a way this parser does not.
 */
export function rewriteUrls(value: string, from: string, to: string): string {
  if (!value.includes(from) && !value.includes(forms(from, to)[0][0]) && !value.includes(forms(from, to)[1][0])) return value;
  if (looksSerialized(value)) return Serialized.rewrite(value, from, to) ?? value;
  return replaceText(value, from, to);
}
