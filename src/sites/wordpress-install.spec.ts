import { defaultAdminUser, INSTALL_PHP, parseInstallResult, setPasswordLink, wordpressSettings } from './wordpress-install';

describe('wordpressSettings', () => {
  const tenant = { contactEmail: 'ops.team+x@example.com' };
  it('takes what the request gives', () => {
    expect(
      wordpressSettings({ name: 'blog' }, tenant, { title: 'My Blog', adminUser: 'jane', adminEmail: 'jane@example.org', locale: 'de_DE' }),
    ).toEqual({ title: 'My Blog', adminUser: 'jane', adminEmail: 'jane@example.org', locale: 'de_DE' });
  });
  it("defaults to the site's name and the tenant's contact, the login from the mailbox", () => {
    expect(wordpressSettings({ name: 'blog' }, tenant, {})).toEqual({
      title: 'blog',
      adminUser: 'ops.teamx',
      adminEmail: tenant.contactEmail,
    });
  });
  it('reads what the row kept when there is no request, and defaults for rows from before', () => {
    const kept = { title: 'T', adminUser: 'a', adminEmail: 'a@b.c' };
    expect(wordpressSettings({ name: 'blog', wordpress: kept }, tenant)).toEqual(kept);
    expect(wordpressSettings({ name: 'blog', wordpress: null }, tenant).title).toBe('blog');
  });
});

describe('defaultAdminUser', () => {
  it.each([
    ['jane@example.com', 'jane'],
    ['_x@example.com', 'x'],
    ['ü@example.com', 'owner'],
    [`${'a'.repeat(80)}@example.com`, 'a'.repeat(60)],
  ])('%s -> %s', (email, user) => expect(defaultAdminUser(email)).toBe(user));
});

describe('setPasswordLink', () => {
  it("is WordPress's reset page, key and login encoded", () => {
    expect(setPasswordLink('https://blog-acme.example.net/', 'k&y=1', 'jane doe')).toBe(
      'https://blog-acme.example.net/wp-login.php?action=rp&key=k%26y%3D1&login=jane%20doe',
    );
  });
});

describe('parseInstallResult', () => {
  it('reads the result line among whatever else PHP printed', () => {
    expect(
      parseInstallResult(0, 'Notice: x\n\nBERTH-RESULT {"fresh":true,"resetKey":"abc","version":"6.1.1","home":"https://a.example"}\n', ''),
    ).toEqual({ fresh: true, resetKey: 'abc', version: '6.1.1', home: 'https://a.example' });
    expect(parseInstallResult(0, 'BERTH-RESULT {"fresh":false,"resetKey":null,"version":"6.1.1","home":"x"}', '').resetKey).toBeNull();
    expect(() => parseInstallResult(0, 'BERTH-RESULT {"fresh":false}', '')).toThrow(/installing WordPress failed/);
  });
  it("fails with what was said: WordPress's database error page (exit 0, no result), or an error", () => {
    expect(() => parseInstallResult(0, '<html><body><h1>Error establishing a database connection</h1></body></html>', '')).toThrow(
      /exit 0\): Error establishing a database connection/,
    );
    expect(() => parseInstallResult(1, '', 'berth: wp_install failed: bad email\n')).toThrow(
      /exit 1\): berth: wp_install failed: bad email/,
    );
    expect(() => parseInstallResult(127, '', '')).toThrow(/no output/);
    // A result line printed before a failure never reaches the error (it may hold a key).
    expect(() => parseInstallResult(255, 'BERTH-RESULT {"fresh":true,"resetKey":"secret-key","home":"h"}\nFatal', '')).toThrow(
      /^installing WordPress failed \(exit 255\): Fatal$/,
    );
  });
});

describe('INSTALL_PHP', () => {
  it('is code for php -r (no open tag) that reads the request from stdin and never from argv or the environment', () => {
    expect(INSTALL_PHP).not.toContain('<?php');
    expect(INSTALL_PHP).toContain('stream_get_contents(STDIN)');
    expect(INSTALL_PHP).not.toMatch(/\$argv/);
    // The environment only for the image's database settings (the lock and the clean-up before WordPress loads), as its wp-config.php reads them.
    const read = [...INSTALL_PHP.matchAll(/berth_env\('([A-Z_]+)'/g)].map((m) => m[1]);
    expect(new Set(read)).toEqual(
      new Set(['WORDPRESS_DB_HOST', 'WORDPRESS_DB_USER', 'WORDPRESS_DB_PASSWORD', 'WORDPRESS_DB_NAME', 'WORDPRESS_TABLE_PREFIX']),
    );
    expect(INSTALL_PHP.match(/getenv\(/g)).toHaveLength(2);
  });
});
