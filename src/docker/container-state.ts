import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { ContainerInfo } from './docker.service';

/** What the cache needs of the Engine. */
export interface ContainerSource {
  inspect(name: string): Promise<ContainerInfo | undefined>;
  /** The event stream of the containers to watch, from now. */
  events(): Promise<Readable>;
  /** The names of every container that stream covers, as of now (a list call). */
  names?(): Promise<string[]>;
  warn(message: string): void;
}

interface Entry {
  info: ContainerInfo | undefined;
  until: number;
}

/**
 * What the API shows of Berth's containers, without asking the Docker Engine on every read.
 * Inspections are remembered for BERTH_CONTAINER_CACHE_MS, forgotten the moment the
 * Engine's event stream reports anything about that container (created, started, died,
 * restarted, health changed, removed, renamed), and only while that stream is connected:
 * when it drops, everything is forgotten and reads go to the Engine until it is back.
 * Concurrent reads of one container share one inspection. Jobs never read from here.
 *
 * Once the stream is connected the cache also lists which containers exist (one call): a name
 * that was not listed and that no event has named since is known to be absent without an
 * inspection, so a site with no containers (not made yet, failed, deleted) costs the Engine
 * nothing however often it is read. Like an inspection, a list is trusted for the time to
 * live only (the Engine may drop events for a subscriber that falls behind), then made again.
 */
export class ContainerStateCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<ContainerInfo | undefined>>();
  /** Bumped by every event about a name, so an inspection that raced one is not kept. */
  private readonly generation = new Map<string, number>();
  /** Bumped whenever the stream drops, for the same reason. */
  private epoch = 0;
  /**
   * The names listed once the stream was connected: for that epoch only, and until `until`
   * (no names: the list failed, and is not tried again before then).
   */
  private existing?: { epoch: number; names?: Set<string>; until: number };
  private listing = false;
  /** Events handled since the cache was made (for tests and diagnostics). */
  eventsHandled = 0;
  private following = false;
  private started = false;
  private stopped = false;
  private stream?: Readable;

  /** @param ttlMs how long an inspection is kept (0: never) */
  constructor(
    private readonly source: ContainerSource,
    private readonly ttlMs: number,
    private readonly retryMs = 1000,
  ) {}

  stop(): void {
    this.stopped = true;
    this.stream?.destroy();
  }

  /** The container as the Engine last reported it (undefined: no such container). */
  async inspect(name: string): Promise<ContainerInfo | undefined> {
    if (!this.ttlMs) return this.source.inspect(name);
    if (!this.started) {
      this.started = true;
      void this.follow();
    }
    const hit = this.entries.get(name);
    if (this.following && hit && hit.until > Date.now()) return hit.info;
    if (this.knownAbsent(name)) return undefined;
    const pending = this.inFlight.get(name);
    if (pending) return pending;
    const [generation, epoch] = [this.generation.get(name) ?? 0, this.epoch];
    const read = this.source.inspect(name).then((info) => {
      if (this.following && this.epoch === epoch && (this.generation.get(name) ?? 0) === generation) {
        this.entries.set(name, { info, until: Date.now() + this.ttlMs });
      }
      return info;
    });
    this.inFlight.set(name, read);
    return read.finally(() => {
      if (this.inFlight.get(name) === read) this.inFlight.delete(name);
    });
  }

  /** Not in the current list, and no event about it since the stream connected (not even a create). */
  private knownAbsent(name: string): boolean {
    if (!this.following || !this.source.names) return false;
    const existing = this.existing;
    if (!existing || existing.epoch !== this.epoch || existing.until <= Date.now()) {
      void this.index(this.epoch); // read the Engine meanwhile
      return false;
    }
    return !!existing.names && !existing.names.has(name) && !this.generation.has(name);
  }

  /**
   * Lists the containers that exist. The stream is connected first, so a change after the list
   * is reported by an event; one during it names the container in `generation`, so it is
   * inspected whatever the list says.
   */
  private async index(epoch: number): Promise<void> {
    if (!this.source.names || this.listing) return;
    this.listing = true;
    try {
      const names = new Set(await this.source.names());
      if (this.following && this.epoch === epoch) this.existing = { epoch, names, until: Date.now() + this.ttlMs };
    } catch (e) {
      if (this.following && this.epoch === epoch) this.existing = { epoch, until: Date.now() + this.ttlMs };
      this.source.warn(`could not list containers: ${(e as Error).message}; inspecting each one read`);
    } finally {
      this.listing = false;
    }
  }

  private forget(name: string | undefined): void {
    if (!name) return;
    this.entries.delete(name);
    this.inFlight.delete(name); // later reads must not join an inspection from before the event
    this.generation.set(name, (this.generation.get(name) ?? 0) + 1);
  }

  private async follow(): Promise<void> {
    while (!this.stopped) {
      try {
        const stream = await this.source.events();
        this.stream = stream;
        if (this.stopped) break;
        // Inspections made while the stream was down may predate changes it will not report.
        this.epoch += 1;
        this.following = true;
        void this.index(this.epoch);
        for await (const line of createInterface({ input: stream })) {
          if (!line.trim()) continue;
          const { Actor } = JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> } };
          this.forget(Actor?.Attributes?.name);
          this.forget(Actor?.Attributes?.oldName?.replace(/^\//, ''));
          this.eventsHandled += 1;
        }
      } catch (e) {
        if (!this.stopped)
          this.source.warn(`event stream lost: ${(e as Error).message}; reading containers from the Engine until it is back`);
      } finally {
        this.stream?.destroy();
      }
      this.following = false;
      this.epoch += 1;
      this.entries.clear();
      this.generation.clear();
      if (!this.stopped) await new Promise((r) => setTimeout(r, this.retryMs));
    }
  }
}
