import type { XBeeApiMode } from "./constants";
import { buildIoSample, buildReceivePacket, type XBeeIoSampleInit, type XBeeReceivePacketInit } from "./packets";

/** The frames a simulated remote node produces at the coordinator's serial port. */
export type XBeeEncodeInput =
  | ({ readonly type: 0x90 } & XBeeReceivePacketInit)
  | ({ readonly type: 0x92 } & XBeeIoSampleInit);

/** One complete frame, 0x7E to checksum, escaped when `mode` is 2. Throws EncodeError on bad input. */
export function encodeXBee(input: XBeeEncodeInput, mode: XBeeApiMode = 1): Buffer {
  const frame = input.type === 0x90 ? buildReceivePacket(input) : buildIoSample(input);
  return frame.toBuffer(mode);
}
