import { both, Laps } from './laps';

describe('both', () => {
  it('runs the parts at once and answers with their values in order', async () => {
    const started: string[] = [];
    const part = (name: string, ms: number) => async () => {
      started.push(name);
      await new Promise((r) => setTimeout(r, ms));
      return name;
    };
    const values = await both(new AbortController().signal, [part('a', 30), part('b', 1)]);
    expect(values).toEqual(['a', 'b']);
    // Both had started before either finished.
    expect(started).toEqual(['a', 'b']);
  });

  it('stops the other parts when one fails, waits for them, and throws the first failure', async () => {
    const events: string[] = [];
    const slow = async (signal: AbortSignal) => {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, 5000);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          // Cleaning up takes a while: the caller must wait for it.
          setTimeout(() => {
            events.push('slow stopped');
            reject(new Error('aborted'));
          }, 20);
        });
      });
      events.push('slow finished');
    };
    const failing = async () => {
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('disk full');
    };
    await expect(both(new AbortController().signal, [slow, failing])).rejects.toThrow('disk full');
    expect(events).toEqual(['slow stopped']);
  });
});

describe('Laps', () => {
  it('names the time of each part, sequential or timed by the caller', () => {
    const laps = new Laps();
    laps.add('dump', 1500);
    laps.add('files', 250);
    laps.lap('');
    expect(laps.toString()).toBe('dump 1.5 s, files 0.3 s');
  });
});
