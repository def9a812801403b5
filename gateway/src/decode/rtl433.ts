import { DecodeError } from "@datalab/shared";
import { decodeRtl433, Rtl433Event, type Rtl433DecodeOptions } from "@datalab/sensors";
import type { MessageDecoder } from "./index";
import { payloadText } from "./index";

/**
 * rtl_433 events published to MQTT (`rtl_433/<host>/events`), through the same codec as the
 * lines of an `rtl_433 -F json` child process (sources/rtl433.ts): one event, one message.
 *
 * An MQTT message must become readings or a quarantine row, so an event without any
 * measurement (a doorbell press, a remote's button) is quarantined as `no_metrics`, as the
 * JSON topics quarantine `no_readings`. (A child process has no "message": such events are
 * only counted there, in datalab_gateway_frames_ignored_total.) Restrict rtl_433's decoders
 * with `-R` to keep them out.
 */
export function createRtl433Decoder(options: Rtl433DecodeOptions = {}): MessageDecoder {
  return (payload) => {
    payloadText(payload); // not_utf8 before not_json: the clearer reason
    const event = Rtl433Event.fromBuffer(payload);
    if (!event.ok) throw new DecodeError(event.reason, `rtl_433 event: ${event.message}`);
    const result = decodeRtl433(event.frame, options);
    switch (result.kind) {
      case "readings":
        return result.readings;
      case "ignored":
        throw new DecodeError(result.category, `rtl_433 event from ${event.frame.model} carries no measurement: ${result.message}`);
      case "error":
        throw new DecodeError(result.reason, `rtl_433 event from ${event.frame.model}: ${result.message}`);
    }
  };
}

export const rtl433Decoder: MessageDecoder = createRtl433Decoder();
