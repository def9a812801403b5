import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";
import {
  connectNats,
  ensureReadingsStream,
  errorMessage,
  ThrottledLog,
  UplinkError,
  type Logger,
  type Subjects,
} from "@datalab/shared";
import { classifyNatsError } from "./nats-errors";
import type { PubAck, Uplink, UplinkState, UplinkStatus } from "./types";

export interface NatsUplinkOptions {
  connection: NodeConnectionOptions;
  subjects: Subjects;
  /** Create the readings stream when missing (needs JetStream API permissions). */
  ensureStream: boolean;
  publishTimeoutMs?: number;
  logger: Logger;
  /** The clock of `status().since` and of the throttled log (default `Date.now`). */
  now?: () => number;
}

/**
 * JetStream uplink. It connects in the background and reconnects for ever; the client's own
 * buffer of unsent data is never relied on (it is dropped when reconnecting gives up), so a
 * batch counts as sent only with its PubAck.
 */
export class NatsUplink implements Uplink {
  readonly kind = "nats";
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private st: UplinkStatus;
  private waiters: (() => void)[] = [];
  private closed = false;
  private streamReady = false;
  /** Connection problems: each distinct one at once, then once a minute while it repeats. */
  private readonly problems: ThrottledLog;
  private lastProblem: string | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: NatsUplinkOptions) {
    this.now = opts.now ?? Date.now;
    this.st = { state: "connecting", since: this.now() };
    this.problems = new ThrottledLog(opts.logger, 60_000, this.now);
    void this.run();
  }

  private setState(state: UplinkState, extra: Partial<UplinkStatus> = {}): void {
    this.st = { ...this.st, ...extra, state, since: this.now() };
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Log a connection problem loudly the first time and when it changes, then once a minute:
   * a gateway retrying every few seconds for a day must not fill the journal.
   */
  private report(err: unknown, what: string): UplinkError {
    const e = classifyNatsError(err);
    // A problem other than the last one logged is logged at once, even one seen a minute ago.
    if (e.message !== this.lastProblem) this.problems.reset();
    this.lastProblem = e.message;
    this.st = { ...this.st, lastError: e.message, problem: e.kind };
    this.problems.error("connection", { err: e.message, problem: e.kind }, what);
    return e;
  }

  private async run(): Promise<void> {
    const log = this.opts.logger;
    try {
      this.nc = await connectNats(this.opts.connection);
    } catch (err) {
      if (this.closed) return;
      // Authorization errors and bad TLS settings end up here: say so, keep buffering, retry.
      this.report(err, "cannot connect to NATS; readings stay in the outbox, retrying every 5 s");
      this.setState("disconnected");
      setTimeout(() => void this.run(), 5_000).unref();
      return;
    }
    if (this.closed) {
      await this.nc.close();
      return;
    }
    this.js = jetstream(this.nc, { timeout: this.opts.publishTimeoutMs ?? 10_000 });
    this.setState("connected", { server: this.nc.getServer(), lastError: undefined, problem: undefined });
    this.problems.reset();
    log.info({ server: this.nc.getServer() }, "uplink connected");
    void this.watch(this.nc);
    void this.nc.closed().then((err) => {
      if (this.closed) return;
      if (err) this.report(err, "NATS connection closed; reconnecting");
      else log.warn("NATS connection closed; reconnecting");
      this.setState("disconnected", err ? {} : { lastError: "connection closed", problem: "unreachable" });
      setTimeout(() => void this.run(), 1_000).unref();
    });
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          this.setState("disconnected", { lastError: `disconnected from ${s.server}`, problem: "unreachable" });
          this.opts.logger.warn({ server: s.server }, "uplink disconnected; readings stay in the outbox");
          break;
        case "reconnecting":
          if (this.st.state !== "reconnecting") this.setState("reconnecting");
          break;
        case "reconnect":
          this.setState("connected", { server: s.server, lastError: undefined, problem: undefined });
          this.problems.reset();
          this.opts.logger.info({ server: s.server }, "uplink reconnected");
          break;
        case "error":
          this.report(s.error, "NATS server error");
          break;
        default:
          break;
      }
    }
  }

  async publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck> {
    if (!this.js || !this.nc || this.st.state !== "connected") {
      throw new UplinkError(`uplink is ${this.st.state}`, { kind: "unreachable" });
    }
    if (!this.streamReady && this.opts.ensureStream) {
      try {
        await ensureReadingsStream(await jetstreamManager(this.nc), this.opts.subjects);
      } catch (err) {
        // A gateway whose credentials only allow publishing cannot manage streams: the hub does.
        this.opts.logger.warn(
          { err: errorMessage(err) },
          "could not check or create the readings stream; assuming the hub manages it",
        );
      }
      this.streamReady = true;
    }
    try {
      const ack = await this.js.publish(subject, data, { msgID: msgId });
      // A publish that got through ends the problem the last one reported (a refused batch
      // on a live connection; a lost connection is cleared by the reconnect).
      if (this.st.problem !== undefined && this.st.state === "connected")
        this.st = { ...this.st, lastError: undefined, problem: undefined };
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      const e = this.report(err, "publish failed");
      throw new UplinkError(`publish to ${subject} failed: ${e.message}`, { cause: err, kind: e.kind });
    }
  }

  sendReport(subject: string, data: Uint8Array): void {
    if (!this.nc || this.nc.isClosed() || this.st.state !== "connected") return;
    try {
      this.nc.publish(subject, data);
    } catch (err) {
      this.opts.logger.debug({ err: errorMessage(err) }, "health report not sent");
    }
  }

  status(): UplinkStatus {
    return this.st;
  }

  changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      this.waiters.push(done);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.setState("closed");
    if (this.nc && !this.nc.isClosed()) await this.nc.close();
  }
}
