import { checkHostname } from './hostname';

const base = { baseDomain: 'sites.example.net' };
const ok = (input: string, opts = base) => {
  const r = checkHostname(input, opts);
  if (!r.ok) throw new Error(`${input}: ${r.reason}`);
  return r.hostname;
};
const reason = (input: string, opts = base) => {
  const r = checkHostname(input, opts);
  return r.ok ? undefined : r.reason;
};

describe('checkHostname', () => {
  it('gives the canonical form: lowercase, punycode, no trailing dot', () => {
    expect(ok('Shop.Example.COM')).toBe('shop.example.com');
    expect(ok('shop.example.com.')).toBe('shop.example.com');
    expect(ok('bücher.example')).toBe('xn--bcher-kva.example');
    expect(ok('xn--bcher-kva.example')).toBe('xn--bcher-kva.example');
    expect(ok(`${'a'.repeat(63)}.example.com`)).toBe(`${'a'.repeat(63)}.example.com`);
  });

  it.each([
    ['', /1 to 253/],
    ['localhost', /two labels/],
    ['a..example.com', /not a valid|label/],
    ['-shop.example.com', /label/],
    ['shop-.example.com', /label/],
    ['sh_op.example.com', /not a valid|label/],
    [`${'a'.repeat(64)}.example.com`, /label/],
    [`${'a.'.repeat(127)}com`, /253/],
    ['10.0.0.1', /IP address/],
    ['*.example.com', /wildcard/],
    ['blog-acme.sites.example.net', /platform's own/],
    ['sites.example.net', /platform's own/],
    ['http://example.com/', /not a valid|label/],
  ])('refuses %p', (input, why) => {
    expect(reason(input)).toMatch(why);
  });

  it('allows a wildcard only as a whole first label, and only when the operator allows them', () => {
    const allowed = { ...base, allowWildcards: true };
    expect(ok('*.example.com', allowed)).toBe('*.example.com');
    expect(reason('shop.*.example.com', allowed)).toMatch(/first label/);
    expect(reason('*shop.example.com', allowed)).toMatch(/first label/);
  });
});
