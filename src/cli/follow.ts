import { SingleBar } from 'cli-progress';
import type { BerthClient, Job } from '../client/berth-client';

/** A job that did not succeed ends the command with its own code. */
export class JobError extends Error {
  constructor(readonly job: Job) {
    super(`job ${job.id} (${job.kind}) ${job.status.toLowerCase()}${job.error ? `: ${job.error}` : ''}`);
  }
  get code() {
    return this.job.status === 'CANCELLED' ? 'JOB_CANCELLED' : 'JOB_FAILED';
  }
}

export interface FollowOptions {
  /** False: the job as it is, not followed (--no-wait). */
  wait: boolean;
  /** --json: nothing but the result on stdout, so no bar and no step lines. */
  json: boolean;
  /** Where progress goes (the CLI's stderr): a bar on a terminal, lines otherwise. */
  stream: NodeJS.WriteStream;
}

/**
 * Follows a job to its end: a progress bar with the current step's name on a terminal, one
 * line per step otherwise (logs of onboarding scripts). Throws JobError unless it succeeded.
 */
export async function followJob(client: Pick<BerthClient, 'waitForJob'>, job: Job, options: FollowOptions): Promise<Job> {
  if (!options.wait) return job;
  const { stream, json } = options;
  const bar =
    stream.isTTY && !json ? new SingleBar({ format: `${job.kind} [{bar}] {percentage}% {step}`, stream, hideCursor: true }) : undefined;
  bar?.start(100, job.progress, { step: '' });
  let said = '';
  let done: Job;
  try {
    done = await client.waitForJob(job.id, (j) => {
      // Steps may run side by side: every running one, else the last.
      const running = j.steps.filter((x) => x.status === 'running');
      const shown = running.length ? running : j.steps.slice(-1);
      const line = shown.length ? shown.map((x) => `${x.name} (${x.status})`).join(', ') : j.status.toLowerCase();
      if (bar) {
        bar.update(j.progress, { step: line });
        // A step that changes is drawn at once: the bar's own redraw (10 a second) would merge
        // the short steps into the next one.
        if (line !== said) bar.render();
      } else if (line !== said && !json) stream.write(`${j.kind} ${j.progress}% ${line}\n`);
      said = line;
    });
    bar?.update(done.progress, { step: done.status.toLowerCase() });
  } finally {
    // The bar's timer would otherwise keep the process alive (and the cursor hidden) after an error.
    bar?.stop();
  }
  if (done.status !== 'SUCCEEDED') throw new JobError(done);
  return done;
}
