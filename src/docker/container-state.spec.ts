import { PassThrough } from 'node:stream';
import type { ContainerInfo } from './docker.service';
import { ContainerStateCache } from './container-state';

/** A fake Engine: containers by name, a count of inspections, and an event stream to push on. */
function fakeEngine() {
  const state = new Map<string, string>();
  let streams: PassThrough[] = [];
  const engine = {
    inspections: 0,
    state,
    gate: undefined as Promise<void> | undefined,
    async inspect(name: string) {
      engine.inspections += 1;
      const status = state.get(name);
      await engine.gate;
      return status ? ({ Name: `/${name}`, State: { Status: status } } as unknown as ContainerInfo) : undefined;
    },
    async events() {
      const s = new PassThrough();
      streams.push(s);
      return s;
    },
    warn: () => undefined,
    emit(name: string, action = 'die') {
      for (const s of streams) s.write(`${JSON.stringify({ Type: 'container', Action: action, Actor: { Attributes: { name } } })}\n`);
    },
    drop() {
      for (const s of streams) s.destroy(new Error('engine restarted'));
      streams = [];
    },
    get connected() {
      return streams.length;
    },
  };
  return engine;
}

const tick = () => new Promise((r) => setTimeout(r, 5));
const statusOf = async (c: ContainerStateCache, name: string) => (await c.inspect(name))?.State.Status ?? 'missing';

describe('ContainerStateCache', () => {
  let caches: ContainerStateCache[] = [];
  const make = (engine: ReturnType<typeof fakeEngine>, ttl = 60_000) => {
    const c = new ContainerStateCache(engine, ttl, 10);
    caches.push(c);
    return c;
  };
  afterEach(() => {
    for (const c of caches) c.stop();
    caches = [];
  });
  /** A cache over a fake Engine holding one container, already following the event stream. */
  const following = async (name: string, status: string) => {
    const engine = fakeEngine();
    engine.state.set(name, status);
    const cache = make(engine);
    expect(await statusOf(cache, name)).toBe(status); // the first read starts following
    await tick();
    return { engine, cache };
  };

  it('answers repeated reads from memory once the event stream is connected', async () => {
    const { engine, cache } = await following('wp_a_blog', 'running');
    expect(await statusOf(cache, 'wp_a_blog')).toBe('running');
    const before = engine.inspections;
    for (let i = 0; i < 10; i++) expect(await statusOf(cache, 'wp_a_blog')).toBe('running');
    expect(engine.inspections).toBe(before);
  });

  it('forgets a container the moment an event about it arrives, and remembers a missing one until it is created', async () => {
    const { engine, cache } = await following('wp_a_blog', 'running');
    await statusOf(cache, 'wp_a_blog');
    engine.state.set('wp_a_blog', 'exited');
    expect(await statusOf(cache, 'wp_a_blog')).toBe('running'); // no event yet: remembered
    engine.emit('wp_a_blog', 'die');
    await tick();
    expect(await statusOf(cache, 'wp_a_blog')).toBe('exited');

    expect(await statusOf(cache, 'wp_a_new')).toBe('missing');
    engine.state.set('wp_a_new', 'created');
    engine.emit('wp_a_new', 'create');
    await tick();
    expect(await statusOf(cache, 'wp_a_new')).toBe('created');
  });

  it('keeps nothing while the stream is down, and nothing read before it came back', async () => {
    const { engine, cache } = await following('db_a', 'running');
    engine.drop();
    await tick();
    const before = engine.inspections;
    // The stream reconnects after 10 ms; until then, every read goes to the Engine.
    engine.state.set('db_a', 'restarting');
    expect(await statusOf(cache, 'db_a')).toBe('restarting');
    await tick();
    await tick();
    expect(engine.connected).toBe(1);
    expect(engine.inspections).toBeGreaterThan(before);
  });

  it('shares one inspection between concurrent reads, but not with reads after an event', async () => {
    const { engine, cache } = await following('wp_a_blog', 'running');
    engine.emit('wp_a_blog', 'restart');
    await tick();
    let open!: () => void;
    engine.gate = new Promise((r) => (open = r));
    const before = engine.inspections;
    const together = [cache.inspect('wp_a_blog'), cache.inspect('wp_a_blog'), cache.inspect('wp_a_blog')];
    expect(engine.inspections).toBe(before + 1);
    // An event while that inspection is out: what it returns is not kept, and new reads ask again.
    engine.emit('wp_a_blog', 'die');
    await tick();
    engine.state.set('wp_a_blog', 'exited');
    const after = cache.inspect('wp_a_blog');
    expect(engine.inspections).toBe(before + 2);
    open();
    engine.gate = undefined;
    await Promise.all(together);
    expect((await after)?.State.Status).toBe('exited');
    expect(await statusOf(cache, 'wp_a_blog')).toBe('exited');
  });

  it('with no time to live, always asks the Engine', async () => {
    const engine = fakeEngine();
    engine.state.set('x', 'running');
    const cache = make(engine, 0);
    for (let i = 0; i < 3; i++) await cache.inspect('x');
    expect(engine.inspections).toBe(3);
    expect(engine.connected).toBe(0);
  });
});
