import { JobKind } from '../generated/prisma/enums';

/** Rounds of attempts a restore may lose its site's lock in before it ends, its site FAILED. */
export const LOST_RESTORES = 5;

export interface FailedAttempt {
  kind: JobKind;
  /** The job rolled back what it had changed (a RolledBackError). */
  rolledBack: boolean;
  /** The site's lock was lost during the attempt. */
  lost: boolean;
  /** It was the last of the queue entry's attempts. */
  spent: boolean;
  /** Rounds of attempts this restore lost its lock in before. */
  lostRounds: number;
}

export interface AttemptOutcome {
  /** The job ends FAILED now (else its row goes back to QUEUED, for BullMQ's next attempt or the sweeper). */
  final: boolean;
  /** Its site is FAILED with it. */
  siteFailed: boolean;
  /** A restore given up after LOST_RESTORES rounds that lost the lock. */
  givenUp: boolean;
  /** Rounds that lost the lock, this one included, to record on the job (0: nothing to record). */
  lostRounds: number;
}

/**
 * What a failed attempt leaves. A rollback ends the job (unless the lock was lost: someone
 * else may hold the site). A restore cut off by its lock's loss neither finished nor rolled
 * back: on its last attempt it is queued again (the sweeper), not given up with the site half
 * restored for a repair to serve, and the next attempt reuses its checkpoint; only after
 * LOST_RESTORES such rounds does it end, its site FAILED (never served half restored). A failed
 * backup changed nothing: its site is not FAILED for it; nor is a site whose lock was lost.
 */
export function attemptOutcome(a: FailedAttempt): AttemptOutcome {
  const lostRestore = a.lost && a.kind === JobKind.RESTORE;
  const lostRounds = lostRestore && a.spent ? a.lostRounds + 1 : 0;
  const givenUp = lostRounds >= LOST_RESTORES;
  return {
    final: (a.rolledBack && !a.lost) || (a.spent && (!lostRestore || givenUp)),
    siteFailed: givenUp || (!a.rolledBack && !a.lost && a.kind !== JobKind.BACKUP),
    givenUp,
    lostRounds,
  };
}
