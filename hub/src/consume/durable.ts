import { AckPolicy, DeliverPolicy, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage, msToNanos, type Subjects } from "@datalab/shared";

/** The durable consumer's name for a sink: shared by every hub process. */
export function durableName(sink: string): string {
  return `${sink}-sink`;
}

export interface DurableLimits {
  /** Batches delivered but not yet acked, over all hub processes on this durable. */
  maxAckPending: number;
  /** How long JetStream waits for an ack before redelivering. */
  ackWaitMs: number;
}

/** Create a sink's durable consumer, or bring an existing one's limits up to date. */
export async function ensureDurable(
  nc: NatsConnection,
  subj: Subjects,
  durable: string,
  opts: DurableLimits,
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const limits = {
    max_ack_pending: opts.maxAckPending,
    ack_wait: msToNanos(opts.ackWaitMs),
    // Unlimited on the server: the hub itself dead-letters a batch after maxDeliver
    // refusals. A server-side limit would count sink outages too, and would silently stop
    // delivering the batch instead of parking it with its reason. (The server's `backoff`
    // list needs a finite max_deliver, so the retry delays come from nak(delay) instead.)
    max_deliver: -1,
  };
  try {
    await jsm.consumers.info(subj.stream, durable);
    await jsm.consumers.update(subj.stream, durable, limits);
  } catch (err) {
    if ((err as Error).name !== "ConsumerNotFoundError" && !/consumer not found/i.test(errorMessage(err))) throw err;
    await jsm.consumers
      .add(subj.stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: subj.allReadings,
        ...limits,
      })
      .catch((e: unknown) => {
        // Another hub process created it between our look and our add.
        if (!/already (exists|in use)/i.test(errorMessage(e))) throw e;
      });
  }
}
