import { createHash } from 'node:crypto';

/** How many of a site's scheduled backups to keep: the newest of each of the last N days and M weeks. */
export interface RetentionPolicy {
  keepDaily: number;
  keepWeekly: number;
}

const day = (t: Date) => t.toISOString().slice(0, 10);

/** ISO 8601 week (UTC), as `YYYY-Www`: weeks start on Monday; week 1 holds the year's first Thursday. */
export function isoWeek(t: Date): string {
  const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  const weekday = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/**
 * Which backups a policy forgets, with restic's own rule: going from the newest back, the
 * newest backup of each of the last `keepDaily` days that have one is kept, and likewise for
 * the last `keepWeekly` ISO weeks; a backup kept by either rule stays. Pure, so the policy is
 * tested without a clock; Berth then forgets exactly these snapshots (by id, never by grouping).
 */
export function toForget<T extends { createdAt: Date }>(backups: readonly T[], policy: RetentionPolicy): T[] {
  const newestFirst = [...backups].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const kept = new Set<T>();
  const days = new Set<string>();
  const weeks = new Set<string>();
  for (const b of newestFirst) {
    const d = day(b.createdAt);
    if (!days.has(d) && days.size < policy.keepDaily) {
      days.add(d);
      kept.add(b);
    }
    const w = isoWeek(b.createdAt);
    if (!weeks.has(w) && weeks.size < policy.keepWeekly) {
      weeks.add(w);
      kept.add(b);
    }
  }
  return newestFirst.filter((b) => !kept.has(b));
}

/**
 * When a site's next scheduled backup is due. The first time: somewhere in the coming interval,
 * at an offset fixed by the site's id, so a fleet's backups are spread over the interval rather
 * than all at one minute. After a run: the first slot after `now` on the same grid, so a
 * schedule missed while workers were down runs once when they return, not once per missed slot.
 */
export function nextBackupAt(siteId: string, intervalHours: number, now: Date, previous: Date | null): Date {
  const interval = intervalHours * 3_600_000;
  if (!previous) {
    const h = createHash('sha256').update(siteId).digest().readUIntBE(0, 6);
    return new Date(now.getTime() + (h % interval));
  }
  const missed = Math.floor((now.getTime() - previous.getTime()) / interval) + 1;
  return new Date(previous.getTime() + Math.max(1, missed) * interval);
}
