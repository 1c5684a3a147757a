import { JobKind } from '../generated/prisma/enums';
import { attemptOutcome, LOST_RESTORES } from './attempt-outcome';

const base = { kind: JobKind.UPDATE, rolledBack: false, lost: false, spent: false, lostRounds: 0 };

describe('attemptOutcome', () => {
  it('retries while attempts remain, and ends the job with its site FAILED on the last', () => {
    expect(attemptOutcome(base)).toEqual({ final: false, siteFailed: true, givenUp: false, lostRounds: 0 });
    expect(attemptOutcome({ ...base, spent: true })).toMatchObject({ final: true, siteFailed: true });
  });

  it('ends at once after a rollback, the site not FAILED; a backup never fails its site', () => {
    expect(attemptOutcome({ ...base, rolledBack: true })).toMatchObject({ final: true, siteFailed: false });
    expect(attemptOutcome({ ...base, kind: JobKind.BACKUP, spent: true })).toMatchObject({ final: true, siteFailed: false });
  });

  it('with the lock lost, leaves the site to whoever holds it: never FAILED for it', () => {
    expect(attemptOutcome({ ...base, lost: true, spent: true })).toMatchObject({ final: true, siteFailed: false });
    expect(attemptOutcome({ ...base, lost: true, rolledBack: true })).toMatchObject({ final: false, siteFailed: false });
  });

  it('queues a restore cut off by a lost lock again even on its last attempt, counting the rounds', () => {
    const restore = { ...base, kind: JobKind.RESTORE, lost: true, spent: true };
    expect(attemptOutcome(restore)).toEqual({ final: false, siteFailed: false, givenUp: false, lostRounds: 1 });
    // Before its last attempt BullMQ retries it: no round counted.
    expect(attemptOutcome({ ...restore, spent: false })).toMatchObject({ final: false, lostRounds: 0 });
  });

  it(`gives such a restore up after ${LOST_RESTORES} rounds, its site FAILED rather than served half restored`, () => {
    const restore = { ...base, kind: JobKind.RESTORE, lost: true, spent: true };
    expect(attemptOutcome({ ...restore, lostRounds: LOST_RESTORES - 2 })).toMatchObject({ final: false, givenUp: false });
    expect(attemptOutcome({ ...restore, lostRounds: LOST_RESTORES - 1 })).toEqual({
      final: true,
      siteFailed: true,
      givenUp: true,
      lostRounds: LOST_RESTORES,
    });
  });
});
