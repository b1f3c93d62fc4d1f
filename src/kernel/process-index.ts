/**
 * The live processes of one node by pid. The node's own pids (`<node.id>`, `<node.id.creation>`)
 * sit in pages of 4,096 slots by id, found by reading the id out of the pid: no hashing, and no
 * table that rehashes as it grows (a Map of 10^6 string keys cost ~0.5 µs per insertion, most of
 * a spawn). A page goes when all its processes have ended. Processes that moved in from another
 * node (or an earlier incarnation of this one) keep their pids and are in a Map of their own.
 */
import type { Pid } from './pid.js';
import type { Process } from './proc.js';

const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;
/** Ids up to here index pages with int32 bit operations. */
const MAX_SMALL_ID = 0x7fffffff;

export class ProcessIndex {
  private readonly pages: ((Process | undefined)[] | undefined)[] = [];
  /** Live processes per page. */
  private readonly live: number[] = [];
  private readonly foreign = new Map<Pid, Process>();
  private count = 0;
  /** The id of the last pid handed out: its page is still being filled. */
  private lastId = 0;

  /** `prefix`: what the node's own pids start with, `<node.` */
  constructor(private readonly prefix: string) {}

  get size(): number {
    return this.count;
  }

  /** A process under a pid this node made with `id` (ids only grow). */
  addOwn(proc: Process, id: number): void {
    this.lastId = id;
    const p = Math.floor(id / PAGE);
    let page = this.pages[p];
    if (page === undefined) {
      page = this.pages[p] = new Array<Process | undefined>(PAGE);
      this.live[p] = 0;
    }
    page[id % PAGE] = proc;
    this.live[p]!++;
    this.count++;
  }

  /** A process that arrived with a pid of its own. */
  addForeign(proc: Process): void {
    this.foreign.set(proc.pid, proc);
    this.count++;
  }

  get(pid: Pid): Process | undefined {
    const id = this.idOf(pid);
    if (id >= 0) {
      // The whole pid is compared: an id read from another node's pid finds nothing here.
      const proc = id <= MAX_SMALL_ID ? this.pages[id >> PAGE_BITS]?.[id & (PAGE - 1)] : this.pages[Math.floor(id / PAGE)]?.[id % PAGE];
      if (proc !== undefined && proc.pid === pid) return proc;
    }
    return this.foreign.size === 0 ? undefined : this.foreign.get(pid);
  }

  delete(proc: Process): void {
    if (this.foreign.get(proc.pid) === proc) {
      this.foreign.delete(proc.pid);
      this.count--;
      return;
    }
    const id = this.idOf(proc.pid);
    if (id < 0) return;
    const p = Math.floor(id / PAGE);
    const page = this.pages[p];
    if (page === undefined || page[id % PAGE] !== proc) return;
    page[id % PAGE] = undefined;
    this.count--;
    if (--this.live[p]! === 0 && p < Math.floor(this.lastId / PAGE)) {
      this.pages[p] = undefined;
      this.live[p] = 0;
    }
  }

  /** Every live process: the node's own by id, then those that moved in. */
  *values(): IterableIterator<Process> {
    for (const page of this.pages) {
      if (page === undefined) continue;
      for (const proc of page) if (proc !== undefined) yield proc;
    }
    yield* this.foreign.values();
  }

  /**
   * The id in one of this node's pids (the digits where the prefix ends), or -1. The prefix itself
   * is not checked here: the caller compares the whole pid with the one it finds.
   */
  private idOf(pid: string): number {
    const start = this.prefix.length;
    let id = 0;
    let i = start;
    for (; i < pid.length; i++) {
      const c = pid.charCodeAt(i);
      if (c < 48 || c > 57) break;
      id = id * 10 + (c - 48);
    }
    return i === start ? -1 : id;
  }
}
