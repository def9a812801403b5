import { DecodeError } from "@datalab/shared";
import type { MessageDecoder } from "./index";
import { payloadText } from "./index";
import { parseJson } from "./json";

/**
 * rtl_433 events published to MQTT (`rtl_433/<host>/events`). The codec itself lives in
 * @datalab/sensors; until it is wired in, events are refused with a clear reason.
 */
export const rtl433Decoder: MessageDecoder = (payload) => {
  parseJson(payloadText(payload));
  throw new DecodeError("unsupported", "rtl_433 decoding is not available in this build");
};
