import { DecodeError } from "@datalab/shared";
import { createMessageDecoder, type MessageFormat, type ProtocolOptionsMap } from "@datalab/sensors";
import type { MessageDecoder } from "../../ingest/index";
import type { FieldCounter } from "../../metrics/index";

const FORMAT_LABELS: Record<MessageFormat, string> = {
  jsonl: "DataLab JSON",
  rtl433: "rtl_433 event",
  mysensors: "MySensors message",
};

/**
 * The MQTT side of a format: the codec of sensors/src/protocols (the one a serial port or
 * stdin of that format uses), adapted to ingest. A message must become readings or a
 * quarantine row, so a valid message without a measurement (a doorbell press, a JSON object
 * of labels) is quarantined with the codec's category (`no_metrics`, `no_readings`); a serial
 * line has no "message" to keep, and such frames are only counted there. Fields the codec
 * could not store with a known unit are counted by `fields`.
 */
export function messageDecoder<P extends MessageFormat>(
  format: P,
  options: ProtocolOptionsMap[P] = {},
  fields?: FieldCounter,
): MessageDecoder {
  const decode = createMessageDecoder(format, options);
  const label = FORMAT_LABELS[format];
  return (payload, ctx) => {
    const r = decode(payload, ctx);
    switch (r.kind) {
      case "readings":
        fields?.count(format, r.notes);
        return r.readings;
      case "ignored":
        fields?.count(format, r.notes);
        throw new DecodeError(r.category, `${label} carries no measurement: ${r.message}`);
      case "error":
        throw new DecodeError(r.reason, r.message);
    }
  };
}
