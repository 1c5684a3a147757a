import type { Job } from '../generated/prisma/client';
import { DesiredState, JobKind, JobStatus, SiteStatus } from '../generated/prisma/enums';
import {
  guarded,
  notCancellable,
  resumeAfterUndo,
  rollbackOf,
  SupersededError,
  supersededBy,
  undoOf,
  type GuardedWrite,
} from './generation';

/**
 * A site row and the requests of SitesService (each bumps the generation by one and keeps
 * what it replaced on its job), with guarded writes applied as PostgreSQL would apply
 * `UPDATE "Site" SET ... WHERE id = $1 AND generation = $2`.
 */
class FakeSite {
  row = {
    id: 's1',
    generation: 1,
    desiredState: DesiredState.RUNNING as DesiredState,
    status: SiteStatus.RUNNING as SiteStatus,
    env: { A: '1' } as Record<string, string>,
    imageTag: null as string | null,
    lastError: null as string | null,
  };
  private n = 0;

  act(kind: JobKind, desired: DesiredState): Job {
    const params = { previousDesired: this.row.desiredState, previousStatus: this.row.status };
    this.row.generation += 1;
    this.row.desiredState = desired;
    if (kind === JobKind.DELETE) this.row.status = SiteStatus.DELETING;
    return this.job(kind, params);
  }

  update(next: { env?: Record<string, string>; imageTag?: string | null }): Job {
    const previous = { env: this.row.env, imageTag: this.row.imageTag };
    this.row.generation += 1;
    Object.assign(this.row, next);
    return this.job(JobKind.UPDATE, { previous });
  }

  repair(): Job {
    return this.job(JobKind.REPAIR, {});
  }

  /** Applies a guarded write; true if it matched the row. */
  write(w: GuardedWrite | undefined): boolean {
    if (!w) throw new Error('nothing to write');
    const args = guarded(this.row.id, w);
    if ((args.where as { generation: number }).generation !== this.row.generation) return false;
    Object.assign(this.row, args.data);
    return true;
  }

  private job(kind: JobKind, params: object): Job {
    return { id: `j${++this.n}`, kind, generation: this.row.generation, params, siteId: this.row.id } as unknown as Job;
  }
}

describe('undo of a job cancelled before it ran', () => {
  it('restores the previous desired state and the generation before the job, so the job before it owns the site', () => {
    const site = new FakeSite();
    const restart = site.act(JobKind.RESTART, DesiredState.RUNNING);
    const stop = site.act(JobKind.STOP, DesiredState.STOPPED);
    expect(site.write(undoOf(stop))).toBe(true);
    expect(site.row).toMatchObject({ desiredState: DesiredState.RUNNING, generation: restart.generation });
    expect(supersededBy(restart.generation, site.row.generation)).toBeUndefined();
  });

  it('changes nothing when a newer request came after it (stop, delete, cancel the stop)', () => {
    const site = new FakeSite();
    const restart = site.act(JobKind.RESTART, DesiredState.RUNNING);
    const stop = site.act(JobKind.STOP, DesiredState.STOPPED);
    const del = site.act(JobKind.DELETE, DesiredState.ABSENT);
    const before = { ...site.row };
    expect(site.write(undoOf(stop))).toBe(false);
    expect(site.row).toEqual(before);
    expect(site.row).toMatchObject({ desiredState: DesiredState.ABSENT, status: SiteStatus.DELETING, generation: del.generation });
    // The running job is overtaken; the delete job owns the site.
    expect(supersededBy(restart.generation, site.row.generation)).toBe(del.generation);
    expect(supersededBy(del.generation, site.row.generation)).toBeUndefined();
  });

  it('of a delete brings back the status and desired state the site had', () => {
    const site = new FakeSite();
    site.act(JobKind.STOP, DesiredState.STOPPED);
    site.row.status = SiteStatus.STOPPED;
    const del = site.act(JobKind.DELETE, DesiredState.ABSENT);
    expect(site.write(undoOf(del))).toBe(true);
    expect(site.row).toMatchObject({ desiredState: DesiredState.STOPPED, status: SiteStatus.STOPPED, generation: del.generation - 1 });
  });

  it('of an update brings back its previous settings, unless a later update replaced them', () => {
    const site = new FakeSite();
    const first = site.update({ env: { A: '2' } });
    expect(site.write(undoOf(first))).toBe(true);
    expect(site.row).toMatchObject({ env: { A: '1' }, generation: 1 });

    const again = site.update({ env: { A: '3' } });
    site.update({ imageTag: '6.2' });
    expect(site.write(undoOf(again))).toBe(false);
    expect(site.row).toMatchObject({ env: { A: '3' }, imageTag: '6.2', generation: 3 });
  });

  it('of a provisioning leaves a FAILED site, unless a newer request will provision it', () => {
    const site = new FakeSite();
    site.row.status = SiteStatus.PENDING;
    const provision = site.repair(); // generation 1, like the job made with the site
    expect(site.write(undoOf({ ...provision, kind: JobKind.PROVISION }))).toBe(true);
    expect(site.row).toMatchObject({
      status: SiteStatus.FAILED,
      generation: 1,
      lastError: expect.stringMatching(/cancelled before it ran/),
    });

    const other = new FakeSite();
    other.row.status = SiteStatus.PENDING;
    const p = { ...other.repair(), kind: JobKind.PROVISION };
    other.act(JobKind.STOP, DesiredState.STOPPED);
    expect(other.write(undoOf(p))).toBe(false);
    expect(other.row.status).toBe(SiteStatus.PENDING);
  });
  it("of the reconciler's jobs (a repair, a deletion it finishes) is nothing: they recorded no request", () => {
    const site = new FakeSite();
    expect(undoOf(site.repair())).toBeUndefined();
    expect(undoOf({ ...site.repair(), kind: JobKind.DELETE })).toBeUndefined();
  });
});

describe('rollback of a failed update', () => {
  it('restores the previous settings while the update still owns the site', () => {
    const site = new FakeSite();
    const update = site.update({ imageTag: 'does-not-exist' });
    expect(site.write(rollbackOf(update)!)).toBe(true);
    // The update keeps the site: its generation stays, with the old settings.
    expect(site.row).toMatchObject({ imageTag: null, env: { A: '1' }, generation: update.generation });
  });

  it("does not touch a later update's settings", () => {
    const site = new FakeSite();
    const bad = site.update({ imageTag: 'does-not-exist' });
    const good = site.update({ imageTag: '6.2', env: { B: '2' } });
    expect(site.write(rollbackOf(bad)!)).toBe(false);
    expect(site.row).toMatchObject({ imageTag: '6.2', env: { B: '2' }, generation: good.generation });
  });

  it('exists only for updates', () => {
    const site = new FakeSite();
    expect(rollbackOf(site.act(JobKind.STOP, DesiredState.STOPPED))).toBeUndefined();
    expect(rollbackOf(site.repair())).toBeUndefined();
  });
});

describe('supersededBy', () => {
  it("is the site's generation when it is newer than the job's, and nothing otherwise", () => {
    expect(supersededBy(3, 4)).toBe(4);
    expect(supersededBy(3, 3)).toBeUndefined();
    // A repair carries the current generation: it owns the site until the next request.
    const site = new FakeSite();
    const repair = site.repair();
    expect(supersededBy(repair.generation, site.row.generation)).toBeUndefined();
    site.act(JobKind.STOP, DesiredState.STOPPED);
    expect(supersededBy(repair.generation, site.row.generation)).toBe(2);
    // A site gone from the database overtakes nothing (the job fails on its own).
    expect(supersededBy(3, undefined)).toBeUndefined();
  });

  it('names both generations in the error; a failure keeps its own message', () => {
    expect(new SupersededError(5, 3).message).toMatch(/superseded by generation 5 .*generation 3/);
    expect(new SupersededError(5, 3, 'update failed: x; not rolled back').message).toBe('update failed: x; not rolled back');
  });
});

describe('resumeAfterUndo', () => {
  const job = (kind: JobKind, generation: number, status: JobStatus, params: object = {}) =>
    ({ id: `j${generation}`, tenantId: 't1', siteId: 's1', kind, generation, status, params }) as unknown as Job;

  it('runs again the job of the restored generation when it had stopped as superseded', () => {
    const restart = job(JobKind.RESTART, 4, JobStatus.SUCCEEDED, { previousDesired: 'RUNNING', supersededBy: 5 });
    const stop = job(JobKind.STOP, 5, JobStatus.CANCELLED);
    expect(resumeAfterUndo(4, [stop, restart])).toEqual({
      from: { id: 'j4', supersededBy: 5, params: { previousDesired: 'RUNNING' } },
      data: { tenantId: 't1', siteId: 's1', kind: JobKind.RESTART, generation: 4, params: { previousDesired: 'RUNNING' } },
    });
  });

  it('looks past backups and restores, which carry the generation they ran at and apply no request', () => {
    const restart = job(JobKind.RESTART, 4, JobStatus.SUCCEEDED, { supersededBy: 5 });
    const backup = { ...job(JobKind.BACKUP, 4, JobStatus.SUCCEEDED), id: 'b4' };
    const queuedBackup = { ...job(JobKind.BACKUP, 4, JobStatus.QUEUED), id: 'b4q' };
    for (const jobs of [
      [backup, restart],
      [queuedBackup, backup, restart],
    ])
      expect(resumeAfterUndo(4, jobs)).toMatchObject({ from: { id: 'j4' }, data: { kind: JobKind.RESTART, generation: 4 } });
  });

  it('runs nothing when that job is still to run, ran to its end or was run again already, or another job is pending', () => {
    expect(resumeAfterUndo(4, [job(JobKind.RESTART, 4, JobStatus.RUNNING)])).toBeUndefined();
    expect(resumeAfterUndo(4, [job(JobKind.RESTART, 4, JobStatus.SUCCEEDED)])).toBeUndefined();
    // Once run again, the stopped job's params no longer say it was superseded.
    expect(resumeAfterUndo(4, [job(JobKind.RESTART, 4, JobStatus.SUCCEEDED, { resumedBy: 'j9' })])).toBeUndefined();
    expect(resumeAfterUndo(4, [job(JobKind.RESTART, 4, JobStatus.FAILED, { supersededBy: 5 })])).toBeUndefined();
    expect(
      resumeAfterUndo(4, [job(JobKind.REPAIR, 4, JobStatus.QUEUED), job(JobKind.RESTART, 4, JobStatus.SUCCEEDED, { supersededBy: 5 })]),
    ).toBeUndefined();
    expect(resumeAfterUndo(4, [])).toBeUndefined();
  });
});

describe('notCancellable', () => {
  const job = (kind: JobKind, status: JobStatus, attempts: number) => ({ kind, status, attempts });

  it('refuses a deletion or a restore once an attempt has begun: running, or queued again after one', () => {
    for (const kind of [JobKind.DELETE, JobKind.RESTORE]) {
      expect(notCancellable(job(kind, JobStatus.RUNNING, 1))).toMatch(/cannot be cancelled/);
      expect(notCancellable(job(kind, JobStatus.QUEUED, 1))).toMatch(/cannot be cancelled/);
      expect(notCancellable(job(kind, JobStatus.QUEUED, 0))).toBeUndefined();
    }
    expect(notCancellable(job(JobKind.DELETE, JobStatus.QUEUED, 2))).toMatch(/deletion that has started/);
  });

  it('lets any other job of a site be cancelled while queued or running, attempted or not', () => {
    for (const kind of [JobKind.PROVISION, JobKind.STOP, JobKind.START, JobKind.RESTART, JobKind.UPDATE, JobKind.BACKUP])
      for (const status of [JobStatus.QUEUED, JobStatus.RUNNING]) expect(notCancellable(job(kind, status, 1))).toBeUndefined();
  });

  it("never lets a tenant's deletion or move be cancelled", () => {
    expect(notCancellable(job(JobKind.DELETE_TENANT, JobStatus.QUEUED, 0))).toMatch(/tenant deletion/);
    expect(notCancellable(job(JobKind.MOVE_TENANT, JobStatus.QUEUED, 0))).toMatch(/move cannot be cancelled/);
  });
});
