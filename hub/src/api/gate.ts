import type pg from "pg";
import { Counter, type Registry } from "@datalab/shared";
import { ApiError } from "./params";

export interface QueryGateOptions {
  /** Queries run at once: the API pool's size, so the pool itself never makes anyone wait. */
  concurrency: number;
  /** Longest a query waits for a turn before the request is answered 503. */
  maxWaitMs: number;
  /** Queries that may wait at once; more are answered 503 at once. */
  maxWaiting: number;
  /** Seconds sent in Retry-After. */
  retryAfterSeconds: number;
  registry?: Registry;
}

interface Waiter {
  start: () => void;
  timer: NodeJS.Timeout;
}

/**
 * Admission in front of the API's connection pool. Without it, a burst of slow queries (year-long
 * sparklines) fills the pool and every other request waits for pg's connect timeout and then
 * fails as a 500; here a request that cannot get a connection soon is told "busy, retry after"
 * (503 + Retry-After) and the wait line is bounded in length and time.
 */
export class QueryGate implements Pick<pg.Pool, "query"> {
  private active = 0;
  private readonly waiting: Waiter[] = [];
  private readonly refused: Counter<"reason"> | undefined;

  constructor(
    private readonly db: Pick<pg.Pool, "query">,
    private readonly o: QueryGateOptions,
  ) {
    this.refused = o.registry
      ? new Counter({
          name: "datalab_hub_api_busy_total",
          help: "API queries answered 503 because every API connection was busy: queue_full (too many waiting) or wait_timeout (DATALAB_API_QUEUE_WAIT_MS)",
          labelNames: ["reason"],
          registers: [o.registry],
        })
      : undefined;
  }

  get stats(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }

  // pg.Pool's query is heavily overloaded; the API only calls it as query(config) or query(text, values).
  query = ((...args: unknown[]) => this.run(() => (this.db.query as (...a: unknown[]) => Promise<unknown>)(...args))) as unknown as pg.Pool["query"];

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.turn();
    try {
      return await fn();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.start();
    }
  }

  /** Resolves when this query may run, holding one slot; rejects with a 503 ApiError when none frees in time. */
  private turn(): Promise<void> {
    if (this.active < this.o.concurrency && this.waiting.length === 0) {
      this.active += 1;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.o.maxWaiting || this.o.maxWaitMs === 0) return Promise.reject(this.busy("queue_full"));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        start: () => {
          clearTimeout(w.timer);
          this.active += 1;
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(this.busy("wait_timeout"));
        }, this.o.maxWaitMs),
      };
      this.waiting.push(w);
    });
  }

  private busy(reason: "queue_full" | "wait_timeout"): ApiError {
    this.refused?.inc({ reason });
    return new ApiError(
      503,
      `the hub is busy: all ${this.o.concurrency} API database connections (DATALAB_API_POOL_SIZE) are in use; try again in ${this.o.retryAfterSeconds} s`,
      [],
      this.o.retryAfterSeconds,
    );
  }
}
