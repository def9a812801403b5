import { errorMessage, UplinkError } from "@datalab/shared";
import type { PubAck, Uplink, UplinkStatus } from "./types";

/**
 * Hands a batch to a receiver in the same process and resolves with its acknowledgement.
 * The receiver (the hub's direct intake, wired by the desktop demo) must resolve only after
 * its sinks committed, so the outbox keeps the rows until then, as with a JetStream PubAck.
 * The gateway never imports the hub: whoever builds both passes the function.
 */
export type InProcessReceiver = (subject: string, data: Uint8Array, msgId: string) => Promise<PubAck>;

export class InProcessUplink implements Uplink {
  readonly kind = "inprocess";
  private st: UplinkStatus;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly receive: InProcessReceiver,
    /** Where health reports go in-process (the hub's report intake), if anywhere. */
    private readonly reports?: (subject: string, data: Uint8Array) => void,
    /** The clock of `status().since`. */
    private readonly now: () => number = Date.now,
  ) {
    this.st = { state: "connected", server: "in-process", since: now() };
  }

  sendReport(subject: string, data: Uint8Array): void {
    this.reports?.(subject, data);
  }

  async publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck> {
    if (this.st.state !== "connected") throw new UplinkError(`uplink is ${this.st.state}`, { kind: "unreachable" });
    try {
      const ack = await this.receive(subject, data, msgId);
      // A publish that got through ends the problem the last one reported.
      if (this.st.lastError !== undefined || this.st.problem !== undefined)
        this.st = { ...this.st, lastError: undefined, problem: undefined };
      return ack;
    } catch (err) {
      const e =
        err instanceof UplinkError
          ? err
          : new UplinkError(`in-process publish to ${subject} failed: ${errorMessage(err)}`, { cause: err });
      this.st = { ...this.st, lastError: errorMessage(err), problem: e.kind };
      throw e;
    }
  }

  status(): UplinkStatus {
    return this.st;
  }

  changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      }, timeoutMs);
      this.waiters.push(done);
    });
  }

  async close(): Promise<void> {
    this.st = { ...this.st, state: "closed", since: this.now() };
    for (const w of this.waiters.splice(0)) w();
  }
}
