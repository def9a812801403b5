/**
 * XBee API frames (Digi "XBee/XBee-PRO Zigbee RF Module User Guide", 90000976, "API frame
 * format"): 0x7E, 16-bit big-endian length of the frame data, frame data (API identifier +
 * frame-specific data), checksum = 0xFF - (sum of frame data bytes & 0xFF).
 */
export const XBEE_START = 0x7e;
/** API mode 2 (AP=2): 0x7D then the byte XOR 0x20 replaces 0x7E, 0x7D, 0x11 (XON), 0x13 (XOFF). */
export const XBEE_ESCAPE = 0x7d;
export const XBEE_XON = 0x11;
export const XBEE_XOFF = 0x13;
export const XBEE_ESCAPE_XOR = 0x20;

/** AP=1: plain frames. AP=2: escaped frames, so 0x7E only ever means "frame starts here". */
export type XBeeApiMode = 1 | 2;

export const XBeeFrameType = {
  RECEIVE_PACKET: 0x90,
  EXPLICIT_RX_INDICATOR: 0x91,
  IO_DATA_SAMPLE: 0x92,
} as const;

/**
 * Status and response frames a coordinator sees in normal operation. They are valid and
 * carry no sensor data, so decode reports them as `ignored` (category `control`) rather than
 * filling the quarantine with a modem status at every start-up.
 */
export const XBEE_CONTROL_FRAME_TYPES: ReadonlyMap<number, string> = new Map([
  [0x88, "AT Command Response"],
  [0x89, "TX Status (802.15.4)"],
  [0x8a, "Modem Status"],
  [0x8b, "Transmit Status"],
  [0x8d, "Route Information"],
  [0x8e, "Aggregate Addressing Update"],
  [0x95, "Node Identification Indicator"],
  [0x97, "Remote AT Command Response"],
  [0x98, "Extended Modem Status"],
  [0xa0, "OTA Firmware Update Status"],
  [0xa1, "Route Record Indicator"],
  [0xa2, "Device Authenticated Indicator"],
  [0xa3, "Many-to-One Route Request Indicator"],
  [0xa4, "Register Joining Device Status"],
  [0xa5, "Join Notification Status"],
]);

/**
 * Default bound on the length field. Zigbee RF payloads are at most 255 bytes (NP), plus an
 * 18-byte 0x91 header; DigiMesh/900HP allow 256. 512 leaves margin and bounds both memory and
 * how long a stray 0x7E in API mode 1 can hold up later frames (see XBeeParser).
 */
export const XBEE_DEFAULT_MAX_FRAME_LENGTH = 512;

/**
 * Zigbee (Series 2) ADC: 10 bits, 0x3FF = 1.2 V. "AD(mV) = (A/D reading * 1200mV) / 1023"
 * (user guide, "I/O sampling"). Use as `scale` in a pin mapping to get millivolts.
 */
export const XBEE_S2_ADC_MV_PER_COUNT = 1200 / 1023;
/**
 * The supply voltage sample (analog mask bit 7, enabled with V+) is scaled differently:
 * read_mv = 1200 * value / 1024 (Digi, "Voltage Readings in XBee Module"). Values exceed
 * 0x3FF (3.3 V reads 0x0B00), which is why samples are not masked to 10 bits.
 */
export const XBEE_SUPPLY_MV_PER_COUNT = 1200 / 1024;

export const XBEE_SENSOR_ID_PREFIX = "xbee";
