import type { StepRecord } from './job.types';

/** Runs named steps with a timeout each, recording their outcome for the job's view. */
export class StepRecorder {
  readonly steps: StepRecord[] = [];

  constructor(
    private readonly total: number,
    private readonly timeoutMs: number,
    private readonly onChange: (steps: StepRecord[], progress: number) => Promise<void>,
    /** Runs before each step; throwing here (a cancellation) stops the job between steps. */
    private readonly checkpoint: () => Promise<void> = async () => undefined,
  ) {}

  async run<T>(name: string, fn: () => Promise<T>, detail?: (result: T) => string | undefined): Promise<T> {
    await this.checkpoint();
    const step: StepRecord = { name, status: 'running', startedAt: new Date().toISOString() };
    this.steps.push(step);
    await this.onChange(this.steps, this.progress());
    try {
      const result = await withTimeout(fn(), this.timeoutMs, name);
      step.status = 'succeeded';
      step.detail = detail?.(result);
      return result;
    } catch (e) {
      step.status = 'failed';
      step.error = (e as Error).message.slice(0, 1000);
      throw e;
    } finally {
      step.finishedAt = new Date().toISOString();
      await this.onChange(this.steps, this.progress());
    }
  }

  private progress(): number {
    const done = this.steps.filter((s) => s.status === 'succeeded').length;
    return Math.min(100, Math.round((done / this.total) * 100));
  }
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`step ${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
