import { randomBytes } from 'node:crypto';
import { randomToken, SecretBox } from './crypto';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('opens what it sealed, and seals the same text differently each time', () => {
    const a = box.seal('s3cret');
    expect(box.open(a)).toBe('s3cret');
    expect(box.seal('s3cret')).not.toBe(a);
    expect(a).not.toContain('s3cret');
  });

  it('refuses a tampered or foreign secret', () => {
    const sealed = box.seal('s3cret');
    const parts = sealed.split('.');
    parts[3] = Buffer.from('tampered').toString('base64url');
    expect(() => box.open(parts.join('.'))).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed)).toThrow();
  });
});

describe('randomToken', () => {
  it('is URL-safe and long', () => {
    expect(randomToken(32)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
