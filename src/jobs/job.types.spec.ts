import type { Job } from '../generated/prisma/client';
import { JobKind, JobStatus } from '../generated/prisma/enums';
import { JobName, queueMessage } from './job.types';

const row = (over: Partial<Job>): Job => ({
  id: 'j1',
  tenantId: 't1',
  siteId: 's1',
  kind: JobKind.START,
  status: JobStatus.QUEUED,
  generation: 4,
  params: {},
  steps: [],
  progress: 0,
  attempts: 0,
  error: null,
  createdAt: new Date(0),
  startedAt: null,
  finishedAt: null,
  ...over,
});

describe('queueMessage', () => {
  it('applies a site for every site job kind', () => {
    expect(queueMessage(row({}))).toEqual({
      name: JobName.ApplySite,
      data: { jobId: 'j1', siteId: 's1', kind: JobKind.START, generation: 4 },
    });
  });

  it('sends a tenant deletion to its own handler, with the tenant and no site', () => {
    expect(queueMessage(row({ kind: JobKind.DELETE_TENANT, siteId: null, generation: 0 }))).toEqual({
      name: JobName.DeleteTenant,
      data: { jobId: 'j1', tenantId: 't1' },
    });
  });

  it('refuses a site job without a site', () => {
    expect(() => queueMessage(row({ siteId: null }))).toThrow(/has no site/);
  });
});
