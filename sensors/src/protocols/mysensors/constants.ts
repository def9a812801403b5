/**
 * MySensors serial API 2.x (https://www.mysensors.org/download/serial_api_20, and the enums
 * in core/MyMessage.h of mysensors/MySensors). A line is
 * `node-id;child-sensor-id;command;ack;type;payload\n`.
 */

/** Field 3. */
export const MysCommand = {
  PRESENTATION: 0,
  SET: 1,
  REQ: 2,
  INTERNAL: 3,
  STREAM: 4,
} as const;

export const MYS_COMMAND_NAMES: readonly string[] = ["C_PRESENTATION", "C_SET", "C_REQ", "C_INTERNAL", "C_STREAM"];

/** The gateway's own node id. */
export const MYS_GATEWAY_NODE_ID = 0;
/** Node id 255 is "no id yet" (a node asking for one) and broadcast. */
export const MYS_AUTO_NODE_ID = 255;
/** Child 255 is the node itself (battery level, sketch name, time requests). */
export const MYS_NODE_CHILD_ID = 255;
/** Assignable node ids: 0 is the gateway, 255 is AUTO/broadcast. */
export const MYS_FIRST_NODE_ID = 1;
export const MYS_LAST_NODE_ID = 254;

/** Field 5 when command = C_INTERNAL. */
export const MysInternal = {
  BATTERY_LEVEL: 0,
  TIME: 1,
  VERSION: 2,
  ID_REQUEST: 3,
  ID_RESPONSE: 4,
  INCLUSION_MODE: 5,
  CONFIG: 6,
  FIND_PARENT_REQUEST: 7,
  FIND_PARENT_RESPONSE: 8,
  LOG_MESSAGE: 9,
  CHILDREN: 10,
  SKETCH_NAME: 11,
  SKETCH_VERSION: 12,
  REBOOT: 13,
  GATEWAY_READY: 14,
} as const;

export const MYS_INTERNAL_NAMES: readonly string[] = [
  "I_BATTERY_LEVEL",
  "I_TIME",
  "I_VERSION",
  "I_ID_REQUEST",
  "I_ID_RESPONSE",
  "I_INCLUSION_MODE",
  "I_CONFIG",
  "I_FIND_PARENT_REQUEST",
  "I_FIND_PARENT_RESPONSE",
  "I_LOG_MESSAGE",
  "I_CHILDREN",
  "I_SKETCH_NAME",
  "I_SKETCH_VERSION",
  "I_REBOOT",
  "I_GATEWAY_READY",
  "I_SIGNING_PRESENTATION",
  "I_NONCE_REQUEST",
  "I_NONCE_RESPONSE",
  "I_HEARTBEAT_REQUEST",
  "I_PRESENTATION",
  "I_DISCOVER_REQUEST",
  "I_DISCOVER_RESPONSE",
  "I_HEARTBEAT_RESPONSE",
  "I_LOCKED",
  "I_PING",
  "I_PONG",
  "I_REGISTRATION_REQUEST",
  "I_REGISTRATION_RESPONSE",
  "I_DEBUG",
  "I_SIGNAL_REPORT_REQUEST",
  "I_SIGNAL_REPORT_REVERSE",
  "I_SIGNAL_REPORT_RESPONSE",
  "I_PRE_SLEEP_NOTIFICATION",
  "I_POST_SLEEP_NOTIFICATION",
];

/** Field 5 when command = C_PRESENTATION: what kind of sensor a child is. */
export const MysSensorType = {
  ARDUINO_NODE: 17,
  ARDUINO_REPEATER_NODE: 18,
  LIGHT_LEVEL: 16,
  AIR_QUALITY: 22,
  DUST: 24,
  SOUND: 33,
  VIBRATION: 34,
  MOISTURE: 35,
} as const;

export const MYS_SENSOR_TYPE_NAMES: readonly string[] = [
  "S_DOOR",
  "S_MOTION",
  "S_SMOKE",
  "S_BINARY",
  "S_DIMMER",
  "S_COVER",
  "S_TEMP",
  "S_HUM",
  "S_BARO",
  "S_WIND",
  "S_RAIN",
  "S_UV",
  "S_WEIGHT",
  "S_POWER",
  "S_HEATER",
  "S_DISTANCE",
  "S_LIGHT_LEVEL",
  "S_ARDUINO_NODE",
  "S_ARDUINO_REPEATER_NODE",
  "S_LOCK",
  "S_IR",
  "S_WATER",
  "S_AIR_QUALITY",
  "S_CUSTOM",
  "S_DUST",
  "S_SCENE_CONTROLLER",
  "S_RGB_LIGHT",
  "S_RGBW_LIGHT",
  "S_COLOR_SENSOR",
  "S_HVAC",
  "S_MULTIMETER",
  "S_SPRINKLER",
  "S_WATER_LEAK",
  "S_SOUND",
  "S_VIBRATION",
  "S_MOISTURE",
  "S_INFO",
  "S_GAS",
  "S_GPS",
  "S_WATER_QUALITY",
];

/** Field 5 when command = C_SET or C_REQ: which variable. Numbers match MyMessage.h. */
export const MysVariable = {
  TEMP: 0,
  HUM: 1,
  STATUS: 2,
  PERCENTAGE: 3,
  PRESSURE: 4,
  FORECAST: 5,
  RAIN: 6,
  RAINRATE: 7,
  WIND: 8,
  GUST: 9,
  DIRECTION: 10,
  UV: 11,
  WEIGHT: 12,
  DISTANCE: 13,
  IMPEDANCE: 14,
  ARMED: 15,
  TRIPPED: 16,
  WATT: 17,
  KWH: 18,
  LIGHT_LEVEL: 23,
  LEVEL: 37,
  VOLTAGE: 38,
  CURRENT: 39,
  HVAC_SETPOINT_COOL: 44,
  HVAC_SETPOINT_HEAT: 45,
  TEXT: 47,
  POSITION: 49,
} as const;

export const MYS_VARIABLE_NAMES: readonly string[] = [
  "V_TEMP",
  "V_HUM",
  "V_STATUS",
  "V_PERCENTAGE",
  "V_PRESSURE",
  "V_FORECAST",
  "V_RAIN",
  "V_RAINRATE",
  "V_WIND",
  "V_GUST",
  "V_DIRECTION",
  "V_UV",
  "V_WEIGHT",
  "V_DISTANCE",
  "V_IMPEDANCE",
  "V_ARMED",
  "V_TRIPPED",
  "V_WATT",
  "V_KWH",
  "V_SCENE_ON",
  "V_SCENE_OFF",
  "V_HVAC_FLOW_STATE",
  "V_HVAC_SPEED",
  "V_LIGHT_LEVEL",
  "V_VAR1",
  "V_VAR2",
  "V_VAR3",
  "V_VAR4",
  "V_VAR5",
  "V_UP",
  "V_DOWN",
  "V_STOP",
  "V_IR_SEND",
  "V_IR_RECEIVE",
  "V_FLOW",
  "V_VOLUME",
  "V_LOCK_STATUS",
  "V_LEVEL",
  "V_VOLTAGE",
  "V_CURRENT",
  "V_RGB",
  "V_RGBW",
  "V_ID",
  "V_UNIT_PREFIX",
  "V_HVAC_SETPOINT_COOL",
  "V_HVAC_SETPOINT_HEAT",
  "V_HVAC_FLOW_MODE",
  "V_TEXT",
  "V_CUSTOM",
  "V_POSITION",
  "V_IR_RECORD",
  "V_PH",
  "V_ORP",
  "V_EC",
  "V_VAR",
  "V_VA",
  "V_POWER_FACTOR",
  "V_MULTI_MESSAGE",
];

/**
 * Longest accepted serial line. A radio payload is at most 25 bytes (MAX_PAYLOAD in
 * MyMessage.h), but the gateway also prints debug logs as I_LOG_MESSAGE lines (the fixture has
 * 108-character ones; MY_SERIAL_OUTPUT_SIZE is 120 in MyConfig.h). 256 bytes fits both.
 */
export const MYS_DEFAULT_MAX_LINE_LENGTH = 256;

export const MYS_SENSOR_ID_PREFIX = "mys";

export function nameOf(names: readonly string[], value: number, fallback: string): string {
  return names[value] ?? `${fallback}${value}`;
}
