import type { DecodedReading } from "@datalab/shared";
import { cleanFloat, parseDecimal } from "../common/numbers";
import { decodeError, ignoredResult, readingsResult, type DecodeResult } from "../common/result";
import {
  MYS_COMMAND_NAMES,
  MYS_INTERNAL_NAMES,
  MYS_SENSOR_ID_PREFIX,
  MYS_SENSOR_TYPE_NAMES,
  MYS_VARIABLE_NAMES,
  MysCommand,
  MysInternal,
  MysVariable,
  nameOf,
} from "./constants";
import type { MySensorsMessage } from "./frame";
import {
  MYS_LEVEL_BY_SENSOR_TYPE,
  MYS_TEXT_VARIABLES,
  MYS_VARIABLE_RULES,
  type MysPressureUnit,
  type MysUnitSystem,
  type MysVariableRule,
} from "./variables";

export interface MySensorsDecodeOptions {
  /** Must match the controller's I_CONFIG answer (default "M"). */
  readonly unitSystem?: MysUnitSystem;
  /** Unit the sketches send V_PRESSURE in (default "hPa"). */
  readonly pressureUnit?: MysPressureUnit;
  /** The S_ type a child presented as, if known (e.g. `controller.sensorTypeOf`); refines V_LEVEL. */
  readonly sensorTypeOf?: (nodeId: number, childId: number) => number | undefined;
}

/**
 * Categories of `ignored` results: well-formed traffic that is not a measurement.
 * `log` (I_LOG_MESSAGE debug output), `gateway_ready`, `presentation`, `internal` (other I_
 * messages: sketch name, ID and time requests... the controller handles those), `request`
 * (C_REQ), `ack` (echo of a message the controller sent), `stream` (firmware OTA),
 * `non_numeric` (V_TEXT, V_FORECAST, V_RGB...).
 */
export type MySensorsIgnoredCategory =
  | "log"
  | "gateway_ready"
  | "presentation"
  | "internal"
  | "request"
  | "ack"
  | "stream"
  | "non_numeric";

export function mysSensorId(nodeId: number, childId: number): string {
  return `${MYS_SENSOR_ID_PREFIX}-${nodeId}-${childId}`;
}

function ignored(category: MySensorsIgnoredCategory, message: string): DecodeResult {
  return ignoredResult(category, message);
}

export function decodeMySensors(msg: MySensorsMessage, options: MySensorsDecodeOptions = {}): DecodeResult {
  const where = `node ${msg.nodeId} child ${msg.childId}`;
  switch (msg.command) {
    case MysCommand.SET:
      return decodeSet(msg, options);
    case MysCommand.INTERNAL:
      return decodeInternal(msg);
    case MysCommand.PRESENTATION:
      return ignored(
        "presentation",
        `${where} presents ${nameOf(MYS_SENSOR_TYPE_NAMES, msg.type, "S_")} ${JSON.stringify(msg.payload)}`,
      );
    case MysCommand.REQ:
      return ignored("request", `${where} requests ${nameOf(MYS_VARIABLE_NAMES, msg.type, "V_")}`);
    case MysCommand.STREAM:
      return ignored("stream", `${where} stream message type ${msg.type}`);
    default:
      return decodeError(
        "unknown_message_type",
        `command ${msg.command} is not one of ${MYS_COMMAND_NAMES.join(", ")}`,
      );
  }
}

/** States and indexes that have no unit (V_STATUS, V_ARMED, V_TRIPPED, V_LOCK_STATUS, V_UV, V_POWER_FACTOR). */
const MYS_DIMENSIONLESS: ReadonlySet<string> = new Set([
  "status",
  "armed",
  "tripped",
  "lock_status",
  "uv_index",
  "power_factor",
]);

function decodeSet(msg: MySensorsMessage, options: MySensorsDecodeOptions): DecodeResult {
  const typeName = nameOf(MYS_VARIABLE_NAMES, msg.type, "V_");
  // Serial API: on incoming messages ack=1 means "this is the ack of a message you sent",
  // i.e. the node echoing a controller command, not a new measurement.
  if (msg.ack === 1) return ignored("ack", `ack of ${typeName} from node ${msg.nodeId} child ${msg.childId}`);
  if (MYS_TEXT_VARIABLES.has(msg.type)) {
    return ignored("non_numeric", `${typeName} carries text or a command, not a measurement`);
  }
  let rule: MysVariableRule | undefined = MYS_VARIABLE_RULES.get(msg.type);
  if (rule === undefined) {
    return decodeError("unknown_message_type", `variable type ${msg.type} is not a known V_ type`);
  }
  if (msg.type === MysVariable.LEVEL && options.sensorTypeOf) {
    const sensorType = options.sensorTypeOf(msg.nodeId, msg.childId);
    rule = (sensorType !== undefined ? MYS_LEVEL_BY_SENSOR_TYPE.get(sensorType) : undefined) ?? rule;
  }
  const value = parseDecimal(msg.payload);
  if (value === undefined) {
    return decodeError("bad_field", `${typeName} payload ${JSON.stringify(msg.payload.slice(0, 40))} is not a number`);
  }
  const converted = rule.convert
    ? cleanFloat(
        rule.convert(value, { unitSystem: options.unitSystem ?? "M", pressureUnit: options.pressureUnit ?? "hPa" }),
      )
    : value;
  const reading: DecodedReading = {
    sensorId: mysSensorId(msg.nodeId, msg.childId),
    metric: rule.metric,
    value: converted,
  };
  if (rule.unit !== undefined) reading.unit = rule.unit;
  // V_RAIN, V_WIND, V_WEIGHT... have no unit in the spec: configured per metric, or unknown.
  else if (!MYS_DIMENSIONLESS.has(rule.metric))
    return readingsResult([reading], [{ field: rule.metric, outcome: "unit_unknown" }]);
  return readingsResult([reading]);
}

function decodeInternal(msg: MySensorsMessage): DecodeResult {
  const typeName = nameOf(MYS_INTERNAL_NAMES, msg.type, "I_");
  switch (msg.type) {
    case MysInternal.BATTERY_LEVEL: {
      const value = parseDecimal(msg.payload);
      if (value === undefined) {
        return decodeError(
          "bad_field",
          `I_BATTERY_LEVEL payload ${JSON.stringify(msg.payload.slice(0, 40))} is not a number`,
        );
      }
      // Kept as sent, even above 100: sketches compute the percentage from a voltage and
      // overshoot when the battery is fresh (the fixture has 102). Clamping would hide a
      // miscalibrated divider; dashboards can clamp for display.
      return readingsResult([
        { sensorId: mysSensorId(msg.nodeId, msg.childId), metric: "battery_level", value, unit: "%EL" },
      ]);
    }
    case MysInternal.LOG_MESSAGE:
      return ignored("log", msg.payload);
    case MysInternal.GATEWAY_READY:
      return ignored("gateway_ready", msg.payload);
    default:
      return ignored("internal", `${typeName} from node ${msg.nodeId}: ${JSON.stringify(msg.payload)}`);
  }
}
