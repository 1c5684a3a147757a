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
    /** While set, a reconnection to the event stream waits for it. */
    eventsGate: undefined as Promise<void> | undefined,
    async events() {
      await engine.eventsGate;
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

/** {@link fakeEngine} that also lists its containers (what the list call returns is gated and counted). */
function listingEngine() {
  const engine = fakeEngine();
  const lister = Object.assign(engine, {
    lists: 0,
    listGate: undefined as Promise<void> | undefined,
    listFails: false,
    async names() {
      const names = [...engine.state.keys()];
      await lister.listGate;
      lister.lists += 1;
      if (lister.listFails) throw new Error('engine busy');
      return names;
    },
  });
  return lister;
}

/** Waits (a macrotask at a time, at most 2 s) until `condition` holds. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}
const statusOf = async (c: ContainerStateCache, name: string) => (await c.inspect(name))?.State.Status ?? 'missing';
/** Waits until reading `name` no longer asks the Engine. */
const answeredWithoutAsking = (engine: { inspections: number }, cache: ContainerStateCache, name: string, what: string) =>
  until(async () => {
    const before = engine.inspections;
    await statusOf(cache, name);
    return engine.inspections === before;
  }, what);

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
    await answeredWithoutAsking(engine, cache, name, 'reads to be answered from memory');
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
    await until(async () => (await statusOf(cache, 'wp_a_blog')) === 'exited', 'the event to make the cache read again');

    expect(await statusOf(cache, 'wp_a_new')).toBe('missing');
    engine.state.set('wp_a_new', 'created');
    expect(await statusOf(cache, 'wp_a_new')).toBe('missing'); // no event yet: remembered
    engine.emit('wp_a_new', 'create');
    await until(async () => (await statusOf(cache, 'wp_a_new')) === 'created', 'the create event to make the cache read again');
  });

  it('keeps nothing while the stream is down, and nothing read before it came back', async () => {
    const { engine, cache } = await following('db_a', 'running');
    // The stream stays down until the gate opens; until then, every read goes to the Engine.
    let reconnect!: () => void;
    engine.eventsGate = new Promise((r) => (reconnect = r));
    engine.drop();
    engine.state.set('db_a', 'restarting');
    await until(async () => (await statusOf(cache, 'db_a')) === 'restarting', 'the cache to forget what it read before the drop');
    for (const status of ['exited', 'running']) {
      engine.state.set('db_a', status);
      expect(await statusOf(cache, 'db_a')).toBe(status);
    }
    expect(engine.connected).toBe(0);
    const before = engine.inspections;
    reconnect();
    engine.eventsGate = undefined;
    await until(() => engine.connected === 1, 'the stream to reconnect');
    await answeredWithoutAsking(engine, cache, 'db_a', 'reads to be answered from memory again');
    expect(engine.inspections).toBeGreaterThan(before);
  });

  it('shares one inspection between concurrent reads, but not with reads after an event', async () => {
    const { engine, cache } = await following('db_a', 'running');
    engine.state.set('wp_a_blog', 'running'); // never read yet, so not remembered
    let open!: () => void;
    engine.gate = new Promise((r) => (open = r));
    const before = engine.inspections;
    const together = [cache.inspect('wp_a_blog'), cache.inspect('wp_a_blog'), cache.inspect('wp_a_blog')];
    expect(engine.inspections).toBe(before + 1);
    // An event while that inspection is out: what it returns is not kept, and new reads ask again.
    engine.emit('wp_a_blog', 'die');
    engine.state.set('wp_a_blog', 'exited');
    let after!: ReturnType<typeof cache.inspect>;
    // Reads before the event is handled join the inspection that is out; the first one after asks again.
    await until(() => {
      after = cache.inspect('wp_a_blog');
      return engine.inspections === before + 2;
    }, 'a read after the event to ask the Engine');
    open();
    engine.gate = undefined;
    await Promise.all(together);
    expect((await after)?.State.Status).toBe('exited');
    expect(await statusOf(cache, 'wp_a_blog')).toBe('exited');
  });

  it('knows a container the list did not name is absent without asking, until an event names it', async () => {
    const engine = listingEngine();
    engine.state.set('wp_a_blog', 'running');
    const cache = make(engine);
    expect(await statusOf(cache, 'wp_a_blog')).toBe('running'); // starts following
    await until(() => engine.lists === 1, 'the containers to be listed');
    const before = engine.inspections;
    for (let i = 0; i < 5; i++) expect(await statusOf(cache, 'wp_a_none')).toBe('missing');
    expect(engine.inspections).toBe(before);
    // The positive control: once an event names it, it is asked about.
    engine.state.set('wp_a_none', 'created');
    expect(await statusOf(cache, 'wp_a_none')).toBe('missing'); // no event yet: still known absent
    engine.emit('wp_a_none', 'create');
    await until(async () => (await statusOf(cache, 'wp_a_none')) === 'created', 'the create event to make the cache ask');
    expect(engine.inspections).toBe(before + 1);
  });

  it('asks about a container created while the list was out, though the list did not name it', async () => {
    const engine = listingEngine();
    let answer!: () => void;
    engine.listGate = new Promise((r) => (answer = r));
    const cache = make(engine);
    await statusOf(cache, 'x'); // starts following; the list waits
    await until(() => engine.connected === 1, 'the stream to connect');
    // The list's snapshot was taken before this container; its create event arrives before the answer.
    engine.state.set('wp_a_blog', 'created');
    engine.emit('wp_a_blog', 'create');
    await until(() => cache.eventsHandled === 1, 'the event to be handled');
    answer();
    await until(() => engine.lists === 1, 'the list to answer');
    const before = engine.inspections;
    expect(await statusOf(cache, 'wp_a_blog')).toBe('created'); // first read of it
    expect(engine.inspections).toBe(before + 1);
    // The positive control: a name neither listed nor in an event is answered without asking.
    expect(await statusOf(cache, 'wp_a_none')).toBe('missing');
    expect(engine.inspections).toBe(before + 1);
  });

  it('trusts a list for the time to live only: a container whose event was missed is found after it', async () => {
    const engine = listingEngine();
    const cache = make(engine, 100);
    await statusOf(cache, 'x');
    await until(() => engine.lists === 1, 'the containers to be listed');
    engine.state.set('wp_missed', 'running'); // created, but its event never arrives
    expect(await statusOf(cache, 'wp_missed')).toBe('missing');
    await until(async () => (await statusOf(cache, 'wp_missed')) === 'running', 'the list to expire');
    await until(() => engine.lists === 2, 'the containers to be listed again');
    await answeredWithoutAsking(engine, cache, 'wp_a_none', 'the new list to be used');
  });

  it('inspects every container read when the list fails, and lists again after the stream comes back', async () => {
    const engine = listingEngine();
    engine.listFails = true;
    const cache = make(engine);
    await statusOf(cache, 'x');
    await until(() => engine.lists === 1, 'the list to fail');
    const before = engine.inspections;
    await statusOf(cache, 'wp_a_none');
    expect(engine.inspections).toBe(before + 1);
    engine.listFails = false;
    engine.drop();
    await until(() => engine.lists === 2 && engine.connected === 1, 'the stream to reconnect and list again');
    await answeredWithoutAsking(engine, cache, 'wp_a_other', 'an unlisted container to be known absent');
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
