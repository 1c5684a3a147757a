import { countEngineCalls, type EngineCalls } from '../common/engine-calls';
import type { StepRecord } from './job.types';

export interface StepRecorderOptions {
  /** The job's own signal (its lock was lost): aborts the running step and stops the job. */
  signal?: AbortSignal;
  /** How long a step that was told to stop (timeout, lost lock) may take to stop before run() gives up on it. */
  stopGraceMs?: number;
}

/** How long a job's step told to stop (timeout, lost lock) may take to stop before its attempt ends without it. */
export const STOP_GRACE_MS = 10_000;

/** A step that ran out of time; its signal was aborted with this error. */
export class StepTimeoutError extends Error {}

/** Errors a checkpoint threw: the job stops between steps, and running steps beside it may finish. */
const BETWEEN_STEPS = new WeakSet<object>();

/**
 * How long a step told to stop may go on before the site's lock is let go anyway (see
 * {@link StepRecorder.idle}): far past any step's timeout, so only a call that hangs reaches it.
 */
export const HUNG_STEP_RELEASE_MS = 15 * 60_000;

/** Branches of one together(): the first failure, once there is one. */
interface Held {
  first?: { error: unknown };
}

/**
 * Runs named steps with a timeout each, recording their outcome for the job's view. Each
 * step gets an AbortSignal: on timeout (or when the job's signal aborts) it is aborted, and
 * run() waits up to stopGraceMs for the step to stop before it throws, so the next attempt
 * does not start beside it. A step that does not stop even then is kept in {@link idle}, for
 * the worker to hold the site's lock until it has.
 */
export class StepRecorder {
  readonly steps: StepRecord[] = [];
  /** Set on a branch of together(). */
  private readonly held?: Held;
  private readonly unsettled = new Set<Promise<unknown>>();
  /** The steps idle(withinMs) gave up waiting for: they no longer count as stopping (later ones do). */
  private readonly abandoned = new Set<Promise<unknown>>();
  /** Writes of the steps, one after the other (branches run side by side share it). */
  private writes = { last: Promise.resolve() };

  constructor(
    private readonly total: number,
    private readonly timeoutMs: number,
    private readonly onChange: (steps: StepRecord[], progress: number) => Promise<void>,
    /** Runs before each step; throwing here (a cancellation) stops the job between steps. */
    private readonly checkpoint: () => Promise<void> = async () => undefined,
    private readonly options: StepRecorderOptions = {},
  ) {}

  /**
   * Runs branches of steps side by side (started in the order given), each recorded in this
   * job's steps as it happens. A
   * step that fails stops the other branches: their running step is aborted and no further
   * step of theirs starts. A branch stopped between steps (a cancellation, a newer request:
   * the checkpoint) lets the others finish the step they are in, but start no other.
   * together() settles only once every branch has, then throws the first failure; else it
   * resolves with each branch's result.
   */
  async together<T extends unknown[]>(...branches: { [K in keyof T]: (steps: StepRecorder) => Promise<T[K]> }): Promise<T> {
    const stop = new AbortController();
    const held: Held = {};
    const settled = await Promise.allSettled(
      branches.map((branch) =>
        Promise.resolve()
          .then(() => branch(this.branch(stop.signal, held)))
          .catch((error: unknown) => {
            held.first ??= { error };
            if (!BETWEEN_STEPS.has(error as object))
              stop.abort(new Error(`stopped: a step beside it failed: ${(error as Error)?.message ?? String(error)}`));
            throw error;
          }),
      ),
    );
    if (held.first) throw held.first.error;
    return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
  }

  /** The same record, steps and writes; its running step is stopped also by `signal`, and no step starts once `held` has a failure. */
  private branch(signal: AbortSignal, held: Held): StepRecorder {
    const outer = this.options.signal;
    const b = new StepRecorder(this.total, this.timeoutMs, this.onChange, this.checkpoint, {
      ...this.options,
      signal: outer ? AbortSignal.any([outer, signal]) : signal,
    });
    Object.assign(b, { steps: this.steps, unsettled: this.unsettled, writes: this.writes, held });
    return b;
  }

  /** Saves the steps as they are when the write runs; writes never overlap, so none goes back in time. */
  private changed(): Promise<void> {
    const write = this.writes.last.catch(() => undefined).then(() => this.onChange(this.steps, this.progress()));
    this.writes.last = write;
    return write;
  }

  /** Runs a step; `timeoutMs` replaces the job's step timeout for one that moves a site's whole content (a backup, a restore). */
  async run<T>(
    name: string,
    fn: (signal: AbortSignal) => Promise<T>,
    detail?: (result: T) => string | undefined,
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    this.options.signal?.throwIfAborted();
    if (this.held?.first) throw this.held.first.error;
    try {
      await this.checkpoint();
    } catch (e) {
      if (typeof e === 'object' && e !== null) BETWEEN_STEPS.add(e);
      throw e;
    }
    this.options.signal?.throwIfAborted();
    const step: StepRecord = { name, status: 'running', startedAt: new Date().toISOString() };
    this.steps.push(step);
    const calls: EngineCalls = {};
    try {
      // Inside the try: a step whose first write fails is not left "running" in the record.
      await this.changed();
      const result = await this.bounded(name, (signal) => countEngineCalls(calls, () => fn(signal)), timeoutMs);
      step.status = 'succeeded';
      step.detail = detail?.(result);
      return result;
    } catch (e) {
      step.status = 'failed';
      step.error = (e as Error).message.slice(0, 1000);
      throw e;
    } finally {
      step.finishedAt = new Date().toISOString();
      if (Object.keys(calls).length > 0) step.engineCalls = { ...calls };
      await this.changed();
    }
  }

  /** Records a step that did nothing but say something (a job that ends early, and why). */
  async record(name: string, detail: string): Promise<void> {
    const now = new Date().toISOString();
    this.steps.push({ name, status: 'succeeded', startedAt: now, finishedAt: now, detail });
    await this.changed();
  }

  /**
   * Resolves once every step that was told to stop has stopped (at once if none is left):
   * true; or false once `withinMs` have passed with one still running (an engine call that
   * never returns must not hold a site's lock, and every later job of it, for good).
   */
  async idle(withinMs = Infinity): Promise<boolean> {
    const settled = (async () => {
      while (this.unsettled.size) await Promise.allSettled([...this.unsettled]);
      return true;
    })();
    if (!Number.isFinite(withinMs)) return settled;
    let timer: NodeJS.Timeout | undefined;
    const ceiling = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), withinMs)));
    try {
      const stopped = await Promise.race([settled, ceiling]);
      // Given up on: what still runs no longer keeps anything locked (see stopping).
      if (!stopped) for (const step of this.unsettled) this.abandoned.add(step);
      return stopped;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The job's signal aborted (its lock was lost): nothing more may be written for it. */
  get interrupted(): boolean {
    return this.options.signal?.aborted ?? false;
  }

  /** A step told to stop is still running, and has not been given up on ({@link idle}). */
  get stopping(): boolean {
    for (const step of this.unsettled) if (!this.abandoned.has(step)) return true;
    return false;
  }

  /** Runs fn until it settles, or until it times out or the job's signal aborts: then stops it. */
  private async bounded<T>(name: string, fn: (signal: AbortSignal) => Promise<T>, timeoutMs: number): Promise<T> {
    const controller = new AbortController();
    const outer = this.options.signal;
    const running = Promise.resolve().then(() => fn(controller.signal));
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<Error>((resolve) => {
      timer = setTimeout(() => resolve(new StepTimeoutError(`step ${name} timed out after ${timeoutMs} ms`)), timeoutMs);
      onAbort = () => resolve(outer?.reason instanceof Error ? outer.reason : new Error(`step ${name} was stopped`));
      if (outer?.aborted) onAbort();
      else outer?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const first = await Promise.race([running.then((value) => ({ value })), stopped.then((reason) => ({ reason }))]);
      if ('value' in first) return first.value;
      controller.abort(first.reason);
      const settled = running.then(
        () => true,
        () => true,
      );
      const grace = this.options.stopGraceMs ?? 5000;
      let graceTimer: NodeJS.Timeout | undefined;
      const done = await Promise.race([settled, new Promise<false>((r) => (graceTimer = setTimeout(() => r(false), grace)))]);
      clearTimeout(graceTimer);
      if (!done) {
        this.unsettled.add(running);
        void settled.then(() => this.unsettled.delete(running));
        throw new Error(`${first.reason.message}; it did not stop within ${grace} ms of being told to`, { cause: first.reason });
      }
      throw first.reason;
    } finally {
      clearTimeout(timer);
      if (onAbort) outer?.removeEventListener('abort', onAbort);
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
