import type pg from "pg";
import { Counter, type Registry } from "@datalab/shared";
import { ApiError } from "../http/params";

export type Db = Pick<pg.Pool, "query">;

export interface QueryGateOptions {
  /** Queries run at once: the API pool's size, so the pool itself never makes anyone wait. */
  concurrency: number;
  /** Longest a query waits for a turn before the request is answered 503. */
  maxWaitMs: number;
  /** Queries that may wait at once, over all clients; more are answered 503 at once. */
  maxWaiting: number;
  /** Seconds sent in Retry-After. */
  retryAfterSeconds: number;
  registry?: Registry;
}

interface Waiter {
  key: string;
  start: () => void;
  timer: NodeJS.Timeout;
}

/**
 * Admission in front of the API's connection pool. Without it, a burst of slow queries (year-long
 * sparklines) fills the pool and every other request waits for pg's connect timeout and then
 * fails as a 500; here a request that cannot get a connection soon is told "busy, retry after"
 * (503 + Retry-After), and the wait line is bounded in length and time.
 *
 * One client (by address) runs at most all connections but one, and holds at most a quarter of
 * the wait line, so a client firing dozens of slow queries leaves a connection for everyone else.
 */
export class QueryGate {
  private active = 0;
  private readonly waiting: Waiter[] = [];
  private readonly runningBy = new Map<string, number>();
  private readonly waitingBy = new Map<string, number>();
  private readonly perClient: number;
  private readonly perClientWaiting: number;
  private readonly refused: Counter<"reason"> | undefined;

  constructor(
    private readonly db: Db,
    private readonly o: QueryGateOptions,
  ) {
    this.perClient = Math.max(1, o.concurrency - 1);
    this.perClientWaiting = Math.max(1, Math.floor(o.maxWaiting / 4));
    this.refused = o.registry
      ? new Counter({
          name: "datalab_hub_api_busy_total",
          help:
            "API queries answered 503 because the API connections were busy: " +
            "queue_full (too many waiting, in all or from one client) or wait_timeout (DATALAB_API_QUEUE_WAIT_MS)",
          labelNames: ["reason"],
          registers: [o.registry],
        })
      : undefined;
  }

  get stats(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }

  /** The pool as one client (its address) sees it. */
  forClient(key: string): Db {
    // pg.Pool's query is heavily overloaded; the API only calls it as query(config) or query(text, values).
    const query = (...args: unknown[]) =>
      this.run(key, () => (this.db.query as (...a: unknown[]) => Promise<unknown>)(...args));
    return { query: query as unknown as pg.Pool["query"] };
  }

  private async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    await this.turn(key);
    try {
      return await fn();
    } finally {
      this.active -= 1;
      bump(this.runningBy, key, -1);
      this.startWaiters();
    }
  }

  private canStart(key: string): boolean {
    return this.active < this.o.concurrency && (this.runningBy.get(key) ?? 0) < this.perClient;
  }

  private begin(key: string): void {
    this.active += 1;
    bump(this.runningBy, key, 1);
  }

  /** In arrival order, every waiter that may run now (one whose client is at its share waits on). */
  private startWaiters(): void {
    for (let i = 0; i < this.waiting.length && this.active < this.o.concurrency; ) {
      const w = this.waiting[i]!;
      if (!this.canStart(w.key)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      bump(this.waitingBy, w.key, -1);
      w.start();
    }
  }

  /** Resolves when this query may run, holding one slot; rejects with a 503 ApiError when none frees in time. */
  private turn(key: string): Promise<void> {
    // Waiters never could start (startWaiters runs on every release), so a newcomer that can start
    // overtakes no one who could.
    if (this.canStart(key)) {
      this.begin(key);
      return Promise.resolve();
    }
    if (
      this.o.maxWaitMs === 0 ||
      this.waiting.length >= this.o.maxWaiting ||
      (this.waitingBy.get(key) ?? 0) >= this.perClientWaiting
    ) {
      return Promise.reject(this.busy("queue_full"));
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        key,
        start: () => {
          clearTimeout(w.timer);
          this.begin(key);
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) {
            this.waiting.splice(i, 1);
            bump(this.waitingBy, key, -1);
          }
          reject(this.busy("wait_timeout"));
        }, this.o.maxWaitMs),
      };
      this.waiting.push(w);
      bump(this.waitingBy, key, 1);
    });
  }

  private busy(reason: "queue_full" | "wait_timeout"): ApiError {
    this.refused?.inc({ reason });
    return new ApiError(
      503,
      `the hub is busy: the ${this.o.concurrency} API database connections (DATALAB_API_POOL_SIZE) are in use; ` +
        `try again in ${this.o.retryAfterSeconds} s`,
      [],
      this.o.retryAfterSeconds,
    );
  }
}

/** Counts per client, holding only clients with something running or waiting. */
function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n > 0) m.set(key, n);
  else m.delete(key);
}
