import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** What one check sees. */
export interface IdleSample {
  /** The process's CPU since the last check, as a share of one core (0.05: 5 %). */
  cpuShare: number;
  /** V8's heap as it stands (total_heap_size). */
  heapBytes: number;
  /** The heap right after the last collection this made (or at start). */
  floorBytes: number;
}

export const IDLE_CPU_SHARE = 0.05;
export const GROWTH_BYTES = 32 * 2 ** 20;

/**
 * Whether to collect now: the process is quiet (a burst of work is over) and its heap has
 * grown well past where the last collection left it, so most of it is garbage V8 has not
 * collected yet (it collects the old generation only as it nears its limit).
 */
export function shouldCollect(s: IdleSample): boolean {
  return s.cpuShare < IDLE_CPU_SHARE && s.heapBytes > s.floorBytes + GROWTH_BYTES;
}

/**
 * Gives memory back once a burst of work is over. After provisioning dozens of sites the
 * heap holds 100 MiB and more of garbage for as long as Berth stays quiet, which on a host is
 * most of the time (measured by `npm run bench`: 302 MiB resident after the throughput runs,
 * 62 MiB of heap in use after a full collection). Every `everyMs`, when the process used
 * less than 5 % of a core since the last check and the heap grew 32 MiB past the last
 * collection, one full collection runs: a pause of tens of milliseconds, only when nothing
 * much is happening.
 */
export class IdleCollector {
  private timer?: NodeJS.Timeout;
  private floor = getHeapStatistics().total_heap_size;
  private cpu = process.cpuUsage();
  private at = process.hrtime.bigint();
  private gc?: () => void;
  collections = 0;

  /** @param log told of each collection (the heap before and after) */
  constructor(
    private readonly everyMs: number,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  start(): void {
    if (!this.everyMs) return;
    this.timer = setInterval(() => this.check(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One check; true when it collected. */
  check(): boolean {
    const [cpu, at] = [process.cpuUsage(this.cpu), process.hrtime.bigint()];
    const cpuShare = (cpu.user + cpu.system) / 1000 / Math.max(1, Number(at - this.at) / 1e6);
    this.cpu = process.cpuUsage();
    this.at = at;
    if (!shouldCollect({ cpuShare, heapBytes: getHeapStatistics().total_heap_size, floorBytes: this.floor })) return false;
    const before = getHeapStatistics().total_heap_size;
    this.collect();
    this.floor = getHeapStatistics().total_heap_size;
    this.collections += 1;
    const mib = (b: number) => Math.round(b / 2 ** 20);
    this.log(`a burst of work is over: one full garbage collection, heap ${mib(before)} → ${mib(this.floor)} MiB`);
    return true;
  }

  private collect(): void {
    if (!this.gc) {
      // gc() is only exposed with --expose-gc; set here, it takes effect for new contexts.
      setFlagsFromString('--expose-gc');
      this.gc = runInNewContext('gc') as () => void;
    }
    this.gc();
  }
}
