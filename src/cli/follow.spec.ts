import type { Job } from '../client/berth-client';
import { followJob, JobError } from './follow';

/** A terminal that keeps what is written to it (cli-progress draws through these calls). */
function terminal(isTTY: boolean) {
  const out: string[] = [];
  const stream = {
    isTTY,
    columns: 200,
    write: (s: string) => out.push(s) > 0,
    cursorTo: (x: number) => out.push(`<col ${x}>`) > 0,
    clearLine: () => true,
    moveCursor: () => true,
    on: () => stream,
    removeListener: () => stream,
  };
  return { stream: stream as unknown as NodeJS.WriteStream, out };
}

const job = (status: string, progress: number, steps: [string, string][]): Job =>
  ({
    id: 'j1',
    kind: 'PROVISION',
    status,
    progress,
    error: null,
    steps: steps.map(([name, s]) => ({ name, status: s })),
  }) as unknown as Job;

/** Nine step changes within the same millisecond, then the end: faster than the bar's 10 a second. */
const updates = [
  job('RUNNING', 0, [['tenant network', 'running']]),
  job('RUNNING', 11, [
    ['tenant network', 'succeeded'],
    ['database server', 'running'],
  ]),
  job('RUNNING', 22, [
    ['tenant network', 'succeeded'],
    ['database server', 'succeeded'],
    ['wait for database server', 'running'],
  ]),
  job('RUNNING', 33, [
    ['tenant network', 'succeeded'],
    ['database server', 'succeeded'],
    ['wait for database server', 'succeeded'],
  ]),
  job('RUNNING', 44, [
    ['tenant network', 'succeeded'],
    ['database server', 'succeeded'],
    ['wait for database server', 'succeeded'],
    ['wait for HTTP', 'running'],
  ]),
];
const end = job('SUCCEEDED', 100, [['wait for HTTP', 'succeeded']]);
const client = (last: Job) => ({
  waitForJob: (_id: string, onUpdate?: (j: Job) => void) => {
    for (const u of updates) onUpdate?.(u);
    onUpdate?.(last);
    return Promise.resolve(last);
  },
});

describe('followJob', () => {
  it('on a terminal, draws a frame for every step it hears of, however fast they come, and ends full', async () => {
    const { stream, out } = terminal(true);
    await followJob(client(end), updates[0], { wait: true, json: false, stream });
    const frames = out.filter((s) => s.startsWith('PROVISION ['));
    for (const name of [
      'tenant network (running)',
      'database server (running)',
      'wait for database server (running)',
      'wait for database server (succeeded)',
      'wait for HTTP (running)',
    ])
      expect(frames.some((f) => f.includes(`% ${name}`))).toBe(true);
    expect(frames.at(-1)).toMatch(/^PROVISION \[=+\] 100% succeeded/);
  });

  it('without a terminal, one line a change; with --json, nothing', async () => {
    const lines = terminal(false);
    await followJob(client(end), updates[0], { wait: true, json: false, stream: lines.stream });
    expect(lines.out).toEqual([
      'PROVISION 0% tenant network (running)\n',
      'PROVISION 11% database server (running)\n',
      'PROVISION 22% wait for database server (running)\n',
      'PROVISION 33% wait for database server (succeeded)\n',
      'PROVISION 44% wait for HTTP (running)\n',
      'PROVISION 100% wait for HTTP (succeeded)\n',
    ]);
    const quiet = terminal(true);
    await followJob(client(end), updates[0], { wait: true, json: true, stream: quiet.stream });
    expect(quiet.out).toEqual([]);
  });

  it('throws a JobError with the job code when the job did not succeed; --no-wait returns the job as it is', async () => {
    const failed = job('FAILED', 44, [['wait for HTTP', 'failed']]);
    const { stream } = terminal(false);
    const error = await followJob(client(failed), updates[0], { wait: true, json: false, stream }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobError);
    expect((error as JobError).code).toBe('JOB_FAILED');
    expect(await followJob(client(failed), updates[0], { wait: false, json: false, stream })).toBe(updates[0]);
  });
});
