import { execFileSync } from 'node:child_process';
import { namedRead, pgTypes } from './pg-types';

describe('pgTypes (a hot read typed as Prisma types it)', () => {
  it("reads timestamp(3) as UTC, where node-postgres reads the process's zone", () => {
    const parse = pgTypes.getTypeParser(1114, 'text') as (text: string) => Date;
    expect(parse('2026-12-05 12:35:22.928').toISOString()).toBe('2026-12-05T12:35:22.928Z');
    // Why it is needed: node-postgres's own parser, in a process whose zone is Tokyo's.
    const byDefault = execFileSync(
      process.execPath,
      ['-e', "process.stdout.write(require('pg').types.getTypeParser(1114, 'text')('2026-12-05 12:35:22.928').toISOString())"],
      { env: { ...process.env, TZ: 'Asia/Tokyo' }, encoding: 'utf8' },
    );
    expect(byDefault).toBe('2026-12-05T03:35:22.928Z');
  });

  it('reads int8 as a bigint and leaves jsonb, float8 and int4 to node-postgres', () => {
    expect((pgTypes.getTypeParser(20, 'text') as (t: string) => bigint)('9007199254740993')).toBe(9007199254740993n);
    expect((pgTypes.getTypeParser(3802, 'text') as (t: string) => unknown)('{"a":[1]}')).toEqual({ a: [1] });
    expect((pgTypes.getTypeParser(701, 'text') as (t: string) => number)('0.5')).toBe(0.5);
    expect((pgTypes.getTypeParser(23, 'text') as (t: string) => number)('42')).toBe(42);
  });
});

describe('namedRead (PrismaService.hotRead)', () => {
  it('runs a named statement with the Prisma-like parsers', async () => {
    const query = jest.fn().mockResolvedValue({ rows: [{ id: 'x' }] });
    expect(await namedRead({ query } as never, 'berth_x', 'SELECT 1', ['a'])).toEqual([{ id: 'x' }]);
    expect(query).toHaveBeenCalledWith({ name: 'berth_x', text: 'SELECT 1', values: ['a'], types: pgTypes });
  });
});
