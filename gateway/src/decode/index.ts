import { DecodeError, type DecodedReading } from "@datalab/shared";
import { decodeJsonValue, parseJson } from "./json";

export { parseTimestamp } from "./timestamp";
export { decodeJsonValue, parseJson } from "./json";

export interface PayloadLimits {
  /** Payloads larger than this are quarantined unread (default 64 KiB). */
  maxPayloadBytes: number;
}

/**
 * A decoder turns one received message into readings, or throws a DecodeError whose
 * `reason` labels the quarantine row and the metric.
 */
export type MessageDecoder = (payload: Buffer, ctx: { topic?: string; sensorIdHint?: string }) => DecodedReading[];

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function checkPayload(payload: Buffer, limits: PayloadLimits): void {
  if (payload.byteLength === 0) throw new DecodeError("empty", "empty payload");
  if (payload.byteLength > limits.maxPayloadBytes) {
    throw new DecodeError("too_large", `payload of ${payload.byteLength} bytes exceeds the limit of ${limits.maxPayloadBytes} bytes`);
  }
}

export function payloadText(payload: Buffer): string {
  try {
    return utf8.decode(payload);
  } catch (err) {
    throw new DecodeError("not_utf8", "payload is not valid UTF-8 text", { cause: err });
  }
}

/** The JSON decoder for the `sensors` topics. */
export const decodeJsonPayload: MessageDecoder = (payload, ctx) => {
  const text = payloadText(payload);
  if (text.trim() === "") throw new DecodeError("empty", "payload is only whitespace");
  return decodeJsonValue(parseJson(text), { sensorIdHint: ctx.sensorIdHint });
};
