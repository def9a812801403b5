import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";
import { connectNats, ensureReadingsStream, errorMessage, UplinkError, type Logger, type Subjects } from "@datalab/shared";
import type { PubAck, Uplink, UplinkState, UplinkStatus } from "./types";

export interface NatsUplinkOptions {
  connection: NodeConnectionOptions;
  subjects: Subjects;
  /** Create the readings stream when missing (needs JetStream API permissions). */
  ensureStream: boolean;
  publishTimeoutMs?: number;
  logger: Logger;
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
  private st: UplinkStatus = { state: "connecting", since: Date.now() };
  private waiters: (() => void)[] = [];
  private closed = false;
  private streamReady = false;

  constructor(private readonly opts: NatsUplinkOptions) {
    void this.run();
  }

  private setState(state: UplinkState, extra: Partial<UplinkStatus> = {}): void {
    this.st = { ...this.st, ...extra, state, since: Date.now() };
    for (const w of this.waiters.splice(0)) w();
  }

  private async run(): Promise<void> {
    const log = this.opts.logger;
    try {
      this.nc = await connectNats(this.opts.connection);
    } catch (err) {
      if (this.closed) return;
      // Authorization errors and bad TLS settings end up here: say so, keep buffering, retry.
      this.setState("disconnected", { lastError: errorMessage(err) });
      log.error({ err: errorMessage(err) }, "cannot connect to NATS; readings stay in the outbox, retrying in 5 s");
      setTimeout(() => void this.run(), 5_000).unref();
      return;
    }
    if (this.closed) {
      await this.nc.close();
      return;
    }
    this.js = jetstream(this.nc, { timeout: this.opts.publishTimeoutMs ?? 10_000 });
    this.setState("connected", { server: this.nc.getServer(), lastError: undefined });
    log.info({ server: this.nc.getServer() }, "uplink connected");
    void this.watch(this.nc);
    void this.nc.closed().then((err) => {
      if (this.closed) return;
      this.setState("disconnected", { lastError: err ? errorMessage(err) : "connection closed" });
      log.warn({ err: err ? errorMessage(err) : undefined }, "NATS connection closed; reconnecting");
      setTimeout(() => void this.run(), 1_000).unref();
    });
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          this.setState("disconnected", { lastError: `disconnected from ${s.server}` });
          this.opts.logger.warn({ server: s.server }, "uplink disconnected");
          break;
        case "reconnecting":
          if (this.st.state !== "reconnecting") this.setState("reconnecting");
          break;
        case "reconnect":
          this.setState("connected", { server: s.server, lastError: undefined });
          this.opts.logger.info({ server: s.server }, "uplink reconnected");
          break;
        case "error":
          this.setState(this.st.state, { lastError: errorMessage(s.error) });
          this.opts.logger.error({ err: errorMessage(s.error) }, "NATS server error");
          break;
        default:
          break;
      }
    }
  }

  async publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck> {
    if (!this.js || !this.nc || this.st.state !== "connected") throw new UplinkError(`uplink is ${this.st.state}`);
    if (!this.streamReady && this.opts.ensureStream) {
      try {
        await ensureReadingsStream(await jetstreamManager(this.nc), this.opts.subjects);
      } catch (err) {
        // A gateway whose credentials only allow publishing cannot manage streams: the hub does.
        this.opts.logger.warn({ err: errorMessage(err) }, "could not check or create the readings stream; assuming the hub manages it");
      }
      this.streamReady = true;
    }
    try {
      const ack = await this.js.publish(subject, data, { msgID: msgId });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      this.st = { ...this.st, lastError: errorMessage(err) };
      throw new UplinkError(`publish to ${subject} failed: ${errorMessage(err)}`, { cause: err });
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
