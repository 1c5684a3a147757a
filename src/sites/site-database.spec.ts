import { createSiteDatabaseSql, dropSiteDatabaseSql } from './site-database';

describe('site database SQL', () => {
  const id = { dbName: 'wp_0123456789abcdef', dbUser: 'wp_0123456789abcdef', dbPassword: 'Abc_def-0123456789xyz' };

  it('creates the database and a user with rights on that database only', () => {
    const sql = createSiteDatabaseSql(id);
    expect(sql).toContain('CREATE DATABASE IF NOT EXISTS `wp_0123456789abcdef`');
    expect(sql).toContain("CREATE USER IF NOT EXISTS 'wp_0123456789abcdef'@'%'");
    expect(sql).toContain("GRANT ALL PRIVILEGES ON `wp_0123456789abcdef`.* TO 'wp_0123456789abcdef'@'%'");
    expect(sql).not.toMatch(/ON \*\.\*/);
  });

  it('drops both', () => {
    expect(dropSiteDatabaseSql(id)).toBe("DROP DATABASE IF EXISTS `wp_0123456789abcdef`;\nDROP USER IF EXISTS 'wp_0123456789abcdef'@'%'");
  });

  it('refuses identifiers or passwords that could break out of the SQL', () => {
    expect(() => createSiteDatabaseSql({ ...id, dbName: 'x`; DROP DATABASE mysql; --' })).toThrow();
    expect(() => createSiteDatabaseSql({ ...id, dbPassword: "pw' OR '1'='1-long-enough" })).toThrow();
  });
});
