import { isoWeek, nextBackupAt, toForget } from './retention';

const at = (iso: string) => ({ id: iso, createdAt: new Date(iso) });

describe('toForget', () => {
  it('keeps the newest backup of each of the last N days, and forgets the rest', () => {
    const backups = [
      at('2026-12-03T10:00:00Z'),
      at('2026-12-03T02:00:00Z'),
      at('2026-12-02T10:00:00Z'),
      at('2026-12-01T10:00:00Z'),
      at('2026-11-30T10:00:00Z'),
    ];
    const forgotten = toForget(backups, { keepDaily: 2, keepWeekly: 0 }).map((b) => b.id);
    expect(forgotten).toEqual(['2026-12-03T02:00:00Z', '2026-12-01T10:00:00Z', '2026-11-30T10:00:00Z']);
  });

  it('keeps the newest of each of the last M ISO weeks beside the daily ones (7 daily and 4 weekly over 40 days)', () => {
    const backups = Array.from({ length: 40 }, (_, i) => at(new Date(Date.UTC(2026, 11, 3, 1) - i * 86_400_000).toISOString()));
    const forgotten = new Set(toForget(backups, { keepDaily: 7, keepWeekly: 4 }).map((b) => b.id));
    const kept = backups.filter((b) => !forgotten.has(b.id)).map((b) => b.id.slice(0, 10));
    // Dec 3 2026 is a Thursday: the 7 newest days, then the newest of the three weeks before this one (Sundays).
    expect(kept).toEqual([
      '2026-12-03',
      '2026-12-02',
      '2026-12-01',
      '2026-11-30',
      '2026-11-29',
      '2026-11-28',
      '2026-11-27',
      '2026-11-22',
      '2026-11-15',
    ]);
  });

  it('keeps everything it is not told to forget when there are fewer backups than the policy allows', () => {
    expect(toForget([at('2026-12-03T10:00:00Z')], { keepDaily: 7, keepWeekly: 4 })).toEqual([]);
    expect(toForget([at('2026-12-03T10:00:00Z'), at('2026-12-02T10:00:00Z')], { keepDaily: 0, keepWeekly: 0 })).toHaveLength(2);
  });

  it('names ISO weeks as restic does (the first Thursday rule across a year end)', () => {
    expect(isoWeek(new Date('2026-12-31T12:00:00Z'))).toBe('2026-W53');
    expect(isoWeek(new Date('2027-01-03T12:00:00Z'))).toBe('2026-W53');
    expect(isoWeek(new Date('2027-01-04T12:00:00Z'))).toBe('2027-W01');
  });
});

describe('nextBackupAt', () => {
  const now = new Date('2026-12-03T12:00:00Z');
  it('spreads first runs over the interval by site, the same for the same site', () => {
    const ids = Array.from({ length: 200 }, (_, i) => `site-${i}`);
    const offsets = ids.map((id) => nextBackupAt(id, 24, now, null).getTime() - now.getTime());
    expect(offsets.every((o) => o >= 0 && o < 24 * 3_600_000)).toBe(true);
    // Spread: no hour of the day holds more than a quarter of them.
    const perHour = new Map<number, number>();
    for (const o of offsets) perHour.set(Math.floor(o / 3_600_000), (perHour.get(Math.floor(o / 3_600_000)) ?? 0) + 1);
    expect(Math.max(...perHour.values())).toBeLessThan(50);
    expect(nextBackupAt('site-7', 24, now, null)).toEqual(nextBackupAt('site-7', 24, now, null));
  });

  it('after a run, the next slot on the same grid; after ten missed days, one run and then the next slot', () => {
    const due = new Date('2026-12-03T11:00:00Z');
    expect(nextBackupAt('s', 24, now, due)).toEqual(new Date('2026-12-04T11:00:00Z'));
    const missed = new Date('2026-11-23T11:00:00Z');
    expect(nextBackupAt('s', 24, now, missed)).toEqual(new Date('2026-12-04T11:00:00Z'));
  });
});
