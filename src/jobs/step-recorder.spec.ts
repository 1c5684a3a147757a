import { StepRecorder, StepTimeoutError } from './step-recorder';
import { LockLostError } from '../redis/lock';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A step that works until its signal aborts, then takes `stopMs` to stop; it logs what it did. */
function cooperative(log: string[], stopMs: number) {
  return (signal: AbortSignal) =>
    new Promise<string>((_resolve, reject) => {
      log.push('started');
      signal.addEventListener('abort', () => {
        log.push('told to stop');
        setTimeout(() => {
          log.push('stopped');
          reject(signal.reason);
        }, stopMs);
      });
    });
}

const recorder = (opts: { timeoutMs?: number; signal?: AbortSignal; stopGraceMs?: number } = {}) =>
  new StepRecorder(
    3,
    opts.timeoutMs ?? 100,
    async () => undefined,
    async () => undefined,
    { signal: opts.signal, stopGraceMs: opts.stopGraceMs ?? 2000 },
  );

describe('StepRecorder', () => {
  it('runs a step to its result and records it', async () => {
    const steps = recorder();
    await expect(
      steps.run(
        'quick',
        async () => 7,
        (n) => `got ${n}`,
      ),
    ).resolves.toBe(7);
    expect(steps.steps).toEqual([expect.objectContaining({ name: 'quick', status: 'succeeded', detail: 'got 7' })]);
  });

  it('stops a step that times out, and throws only once it has stopped', async () => {
    const log: string[] = [];
    const steps = recorder({ timeoutMs: 100 });
    const failed = steps.run('slow', cooperative(log, 150)).catch((e: Error) => {
      log.push('run() threw');
      return e;
    });
    const error = await failed;
    expect(error).toBeInstanceOf(StepTimeoutError);
    expect(log).toEqual(['started', 'told to stop', 'stopped', 'run() threw']);
    expect(steps.steps[0]).toMatchObject({ name: 'slow', status: 'failed', error: expect.stringMatching(/timed out after 100 ms/) });
    expect(steps.stopping).toBe(false);
  });

  it('gives up waiting for a step that ignores its signal, and keeps it in idle() until it stops', async () => {
    let finish!: () => void;
    const steps = recorder({ timeoutMs: 50, stopGraceMs: 100 });
    const started = Date.now();
    const error = await steps.run('stubborn', () => new Promise<void>((r) => (finish = r))).catch((e: Error) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect((error as Error).message).toMatch(/timed out after 50 ms; it did not stop within 100 ms/);
    expect(steps.stopping).toBe(true);
    let idle = false;
    const waiting = steps.idle().then(() => (idle = true));
    await sleep(50);
    expect(idle).toBe(false);
    finish();
    await waiting;
    expect(steps.stopping).toBe(false);
  });

  it('stops waiting in idle(withinMs) for a step that never stops, saying so; says it stopped when it did', async () => {
    const steps = recorder({ timeoutMs: 20, stopGraceMs: 20 });
    await steps.run('hung', () => new Promise<void>(() => undefined)).catch(() => undefined);
    expect(steps.stopping).toBe(true);
    const started = Date.now();
    await expect(steps.idle(60)).resolves.toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    // Given up on: it keeps nothing locked any more...
    expect(steps.stopping).toBe(false);
    // ...but a later step that does not stop does, as before.
    await steps.run('hung later', () => new Promise<void>(() => undefined)).catch(() => undefined);
    expect(steps.stopping).toBe(true);
    // Control: a step that does stop within the ceiling.
    let finish!: () => void;
    const other = recorder({ timeoutMs: 20, stopGraceMs: 20 });
    await other.run('slow to stop', () => new Promise<void>((r) => (finish = r))).catch(() => undefined);
    const waiting = other.idle(5_000);
    finish();
    await expect(waiting).resolves.toBe(true);
  });

  it("stops the running step when the job's signal aborts (its lock was lost), and runs no further step", async () => {
    const job = new AbortController();
    const log: string[] = [];
    const steps = recorder({ timeoutMs: 10_000, signal: job.signal });
    const running = steps.run('apply', cooperative(log, 20)).catch((e: Error) => e);
    await sleep(20);
    job.abort(new LockLostError('berth:lock:site:x', 'another holder has it'));
    expect(await running).toBeInstanceOf(LockLostError);
    expect(log).toEqual(['started', 'told to stop', 'stopped']);
    expect(steps.interrupted).toBe(true);
    let ran = false;
    await expect(steps.run('next', async () => (ran = true))).rejects.toBeInstanceOf(LockLostError);
    expect(ran).toBe(false);
  });
});

describe('StepRecorder and the Engine API calls of a step', () => {
  it('records the calls each step made, also when it fails, and none for a step that made none', async () => {
    const { noteEngineCall } = await import('../common/engine-calls');
    const steps = recorder();
    await steps.run('create', async () => {
      noteEngineCall('POST', '/v1.41/containers/create?name=a');
      await sleep(1);
      noteEngineCall('POST', '/v1.41/containers/abc/start');
    });
    await steps.run('think', async () => 1);
    await expect(
      steps.run('fail', async () => {
        noteEngineCall('GET', '/containers/abc/json');
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(steps.steps.map((s) => [s.name, s.engineCalls])).toEqual([
      ['create', { 'POST /containers/create': 1, 'POST /containers/{id}/start': 1 }],
      ['think', undefined],
      ['fail', { 'GET /containers/{id}/json': 1 }],
    ]);
  });
});

describe('StepRecorder.together', () => {
  it('runs branches side by side, in one record, and resolves with each branch’s result', async () => {
    const writes: string[][] = [];
    const steps = new StepRecorder(4, 1000, async (list) => {
      // A slow write: writes must still never overlap nor go back in time.
      await sleep(5);
      writes.push(list.map((x) => `${x.name}:${x.status}`));
    });
    const order: string[] = [];
    const [a, b] = await steps.together(
      async (s) => {
        await s.run('a1', async () => {
          order.push('a1 start');
          await sleep(40);
          order.push('a1 end');
        });
        return s.run('a2', async () => 'A');
      },
      async (s) =>
        s.run('b1', async () => {
          order.push('b1 start');
          await sleep(10);
          order.push('b1 end');
          return 2;
        }),
    );
    expect([a, b]).toEqual(['A', 2]);
    // b1 started and ended while a1 ran.
    expect(order).toEqual(['a1 start', 'b1 start', 'b1 end', 'a1 end']);
    expect(steps.steps.map((x) => [x.name, x.status])).toEqual([
      ['a1', 'succeeded'],
      ['b1', 'succeeded'],
      ['a2', 'succeeded'],
    ]);
    // The last write holds the final state; each write has at least as many steps as the one before.
    expect(writes.at(-1)).toEqual(['a1:succeeded', 'b1:succeeded', 'a2:succeeded']);
    writes.slice(1).forEach((w, i) => expect(w.length).toBeGreaterThanOrEqual(writes[i].length));
  });

  it('stops the other branches when one fails, settles only once they stopped, and throws the first failure', async () => {
    const steps = recorder({ timeoutMs: 5000 });
    const log: string[] = [];
    let startedAfter = false;
    const failure = steps.together(
      async (s) => {
        await s.run('slow', cooperative(log, 30));
        startedAfter = true;
        await s.run('never', async () => undefined);
      },
      async (s) =>
        s.run('fails', async () => {
          await sleep(10);
          throw new Error('no database');
        }),
    );
    await expect(failure).rejects.toThrow('no database');
    // The control: the slow step had started; it was told to stop, and had stopped when together() threw.
    expect(log).toEqual(['started', 'told to stop', 'stopped']);
    expect(startedAfter).toBe(false);
    expect(steps.steps.map((x) => [x.name, x.status])).toEqual([
      ['slow', 'failed'],
      ['fails', 'failed'],
    ]);
    expect(steps.steps[0].error).toMatch(/stopped: a step beside it failed: no database/);
  });
  it('lets a running step beside a branch stopped between steps (a cancellation) finish, and starts no other', async () => {
    let cancelled = false;
    const steps = new StepRecorder(
      4,
      5000,
      async () => undefined,
      async () => {
        if (cancelled) throw new Error('cancelled by its owner');
      },
    );
    const log: string[] = [];
    const failure = steps.together(
      async (s) => {
        await s.run('long', async (signal) => {
          await sleep(40);
          log.push(signal.aborted ? 'long aborted' : 'long finished');
        });
        await s.run('after long', async () => log.push('after long ran'));
      },
      async (s) => {
        await s.run('short', async () => sleep(5));
        cancelled = true;
        await s.run('never', async () => log.push('never ran'));
      },
    );
    await expect(failure).rejects.toThrow('cancelled by its owner');
    // The control: the long step ran to its end, not aborted; nothing started after the cancellation.
    expect(log).toEqual(['long finished']);
    expect(steps.steps.map((x) => [x.name, x.status])).toEqual([
      ['long', 'succeeded'],
      ['short', 'succeeded'],
    ]);
  });

  it('stops every branch when one throws before returning a promise', async () => {
    const steps = recorder({ timeoutMs: 5000 });
    const log: string[] = [];
    const failure = steps.together(
      async (s) => s.run('slow', cooperative(log, 5)),
      () => {
        throw new Error('thrown at once');
      },
    );
    await expect(failure).rejects.toThrow('thrown at once');
    expect(log).toEqual(['started', 'told to stop', 'stopped']);
  });
});
