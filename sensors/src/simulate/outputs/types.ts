import { DataLabError } from "@datalab/shared";
import type { MalformedSpec } from "../samples/faults";
import type { SensorMessage } from "../samples/kinds";

/** One unit of output: an MQTT publish, or bytes for a serial line / stdout (topic unused). */
export interface OutMessage {
  topic: string;
  payload: Buffer;
}

/** Turns a message into bytes in one wire format; `malformed` damages them in one of its ways. */
export interface MessageEncoder {
  readonly name: string;
  /** Throws EncodeError when the format cannot carry the message (e.g. an unknown MySensors metric). */
  encode(m: SensorMessage, malformed?: MalformedSpec): OutMessage[];
  /** The ways this encoder can damage a payload, for `--malformed-rate`. */
  readonly malformedVariants: readonly string[];
}

/**
 * Where messages go. `send` returns undefined when the message was taken at once, or a promise
 * to await when the output is full (backpressure): callers stop producing until it settles, so
 * memory stays bounded at any rate. Checking for undefined keeps the fast path free of a
 * promise per message.
 */
export interface Output {
  readonly description: string;
  send(m: OutMessage): Promise<void> | undefined;
  /** Waits until everything sent has been accepted (PUBACK, written to the port), then closes. */
  close(): Promise<void>;
}

/** An output could not take messages: broker unreachable, port not there, reader gone. */
export class OutputError extends DataLabError {
  override name = "OutputError";
  constructor(
    message: string,
    /** `closed`: the reader went away (stdout piped into `head`), a normal way to stop. */
    readonly reason: "unreachable" | "failed" | "closed" = "failed",
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
