import type { PoolClient } from "pg";
import { cpuSeconds } from "./proc";

/**
 * CPU-seconds of the Postgres backends serving one database, read from /proc: the backends
 * are listed from `pg_stat_activity` through the caller's connection, whose own backend is
 * left out. Backends come and go, so `sample()` is called now and then during a round.
 */
export class BackendCpu {
  private readonly backends = new Map<number, { start: number; last: number }>();
  private known = new Set<number>();

  constructor(private readonly client: PoolClient) {}

  /** Take the backends that exist now as the round's start. */
  async start(): Promise<void> {
    await this.sample();
    for (const b of this.backends.values()) b.start = b.last;
    this.known = new Set(this.backends.keys());
  }

  /** Record each backend's CPU now; one that appears after `start()` counts from zero. */
  async sample(): Promise<void> {
    const pids = (
      await this.client.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
      )
    ).rows.map((r) => r.pid);
    for (const pid of pids) {
      const s = cpuOrUndefined(pid);
      if (s === undefined) continue;
      const b = this.backends.get(pid);
      if (b) b.last = s;
      else this.backends.set(pid, { start: s, last: s });
    }
  }

  /** CPU-seconds of every backend seen since `start()`, as of its last sample. */
  total(): number {
    let pg = 0;
    for (const [pid, b] of this.backends) pg += b.last - (this.known.has(pid) ? b.start : 0);
    return pg;
  }

  get seen(): number {
    return this.backends.size;
  }
}

/** CPU-seconds of a process that may already have exited. */
function cpuOrUndefined(pid: number): number | undefined {
  try {
    return cpuSeconds(pid);
  } catch {
    return undefined;
  }
}
