import type { PubAck, Uplink } from "../../src/uplink/types";

/** The real uplink, except that the process "dies" right after the first PubAck: nothing after it runs. */
export class DiesAfterFirstAck implements Uplink {
  readonly kind = "nats";
  acked = 0;
  constructor(private readonly real: Uplink) {}
  async publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck> {
    await this.real.publish(subject, data, msgId);
    this.acked++;
    return new Promise<PubAck>(() => undefined);
  }
  status() {
    return this.real.status();
  }
  changed(ms: number) {
    return this.real.changed(ms);
  }
  close() {
    return Promise.resolve();
  }
}
