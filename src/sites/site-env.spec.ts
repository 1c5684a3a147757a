import { BerthError, ErrorCode } from '../common/errors';
import { validateSiteEnv } from './site-env';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof BerthError ? e.code : 'other';
  }
  return undefined;
}

describe('validateSiteEnv', () => {
  it('accepts ordinary variables, including multi-line values', () => {
    const env = { WORDPRESS_DEBUG: '1', WORDPRESS_CONFIG_EXTRA: "define('A', 1);\ndefine('B', 2);" };
    expect(validateSiteEnv(env)).toEqual(env);
    expect(validateSiteEnv(undefined)).toEqual({});
  });

  it.each([
    ['reserved name', { WORDPRESS_DB_PASSWORD: 'x' }],
    ['name with a space', { 'BAD NAME': 'x' }],
    ['name starting with a digit', { '1ABC': 'x' }],
    ['name with =', { 'A=B': 'x' }],
    ['shell metacharacters in the name', { 'A;rm -rf /': 'x' }],
    ['a number value', { A: 1 }],
    ['a NUL in the value', { A: 'a\0b' }],
    ['an oversized value', { A: 'x'.repeat(9000) }],
    ['too many variables', Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x']))],
    ['an array', ['A=1']],
  ])('refuses %s', (_what, env) => {
    expect(code(() => validateSiteEnv(env))).toBe(ErrorCode.VALIDATION_FAILED);
  });

  it('bounds the total size', () => {
    const env = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`V${i}`, 'x'.repeat(8000)]));
    expect(code(() => validateSiteEnv(env))).toBe(ErrorCode.VALIDATION_FAILED);
  });
});
