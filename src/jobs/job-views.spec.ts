import { BerthError, ErrorCode } from '../common/errors';
import type { JobView } from './dto/job.dto';
import { currentJobView } from './job-views';

/** What jobUpdated sends for a notice: the job's row now; a row gone leaves the notice's own payload. */
describe('currentJobView', () => {
  const running = {
    id: 'j1',
    status: 'RUNNING',
    createdAt: new Date('2026-12-06T08:00:00Z'),
    startedAt: new Date('2026-12-06T08:00:01Z'),
    finishedAt: null,
  } as unknown as JobView;
  // As a notice crosses Redis: JSON, its dates strings.
  const published = JSON.parse(
    JSON.stringify({ ...running, status: 'SUCCEEDED', finishedAt: new Date('2026-12-06T08:00:09Z') }),
  ) as JobView;
  const gone = () => Promise.reject(new BerthError(ErrorCode.JOB_NOT_FOUND, 'Job j1 was not found'));

  it('is the row as it is now, whatever the notice says', async () => {
    await expect(currentJobView(() => Promise.resolve(running))(published)).resolves.toBe(running);
    await expect(currentJobView(() => Promise.resolve(running))(null)).resolves.toBe(running);
  });

  it("is the notice's payload, its dates made dates again, when the row is gone", async () => {
    const view = await currentJobView(gone)(published);
    expect(view).toEqual({
      ...running,
      status: 'SUCCEEDED',
      finishedAt: new Date('2026-12-06T08:00:09Z'),
    });
    expect(view.createdAt).toBeInstanceOf(Date);
    expect(view.startedAt).toBeInstanceOf(Date);
  });

  it('fails with the row gone and no notice to stand for it, and with any other error', async () => {
    await expect(currentJobView(gone)(null)).rejects.toMatchObject({ code: ErrorCode.JOB_NOT_FOUND });
    const boom = () => Promise.reject(new BerthError(ErrorCode.INTERNAL, 'boom'));
    await expect(currentJobView(boom)(published)).rejects.toMatchObject({ code: ErrorCode.INTERNAL });
    await expect(currentJobView(() => Promise.reject(new Error('connection lost')))(published)).rejects.toThrow('connection lost');
  });
});
