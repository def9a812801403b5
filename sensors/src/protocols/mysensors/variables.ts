import { MysSensorType } from "./constants";

/**
 * I_CONFIG answer from the controller: "M" metric or "I" imperial. Sketches read it with
 * `getControllerConfig().isMetric` and send V_TEMP in °F and V_DISTANCE in inches when
 * imperial, so the decoder must use the same setting as the controller.
 */
export type MysUnitSystem = "M" | "I";

/**
 * V_PRESSURE has no unit in the spec. The MySensors pressure sketch (BMP085/BMP180 example)
 * sends hPa, so that is the default; set "Pa" for sketches that send pascals.
 */
export type MysPressureUnit = "hPa" | "Pa";

export interface MysConversionContext {
  readonly unitSystem: MysUnitSystem;
  readonly pressureUnit: MysPressureUnit;
}

export interface MysVariableRule {
  readonly metric: string;
  /**
   * SenML unit (RFC 8428, RFC 8798), only where the MySensors spec or the metric/imperial
   * convention fixes it. V_WIND, V_RAIN, V_WEIGHT, V_FLOW and V_VOLUME have no defined unit
   * (sketches send km/h or m/s, mm or inches, kg or g), so none is claimed for them.
   */
  readonly unit?: string;
  readonly convert?: (value: number, ctx: MysConversionContext) => number;
}

const temperature = (v: number, ctx: MysConversionContext): number => (ctx.unitSystem === "I" ? ((v - 32) * 5) / 9 : v);
const distance = (v: number, ctx: MysConversionContext): number => (ctx.unitSystem === "I" ? v * 2.54 : v);
const pressure = (v: number, ctx: MysConversionContext): number => (ctx.pressureUnit === "hPa" ? v * 100 : v);

/** Numeric variable types (C_SET), keyed by V_ number. */
export const MYS_VARIABLE_RULES: ReadonlyMap<number, MysVariableRule> = new Map<number, MysVariableRule>([
  [0, { metric: "temperature", unit: "Cel", convert: temperature }], // V_TEMP
  [1, { metric: "humidity", unit: "%RH" }], // V_HUM
  [2, { metric: "status" }], // V_STATUS: 1 on, 0 off
  [3, { metric: "percentage", unit: "%" }], // V_PERCENTAGE (dimmer level)
  [4, { metric: "pressure", unit: "Pa", convert: pressure }], // V_PRESSURE
  [6, { metric: "rain" }], // V_RAIN
  [7, { metric: "rain_rate" }], // V_RAINRATE
  [8, { metric: "wind_speed" }], // V_WIND
  [9, { metric: "wind_gust" }], // V_GUST
  [10, { metric: "wind_direction", unit: "deg" }], // V_DIRECTION: "0-360 (degrees)"
  [11, { metric: "uv_index" }], // V_UV
  [12, { metric: "weight" }], // V_WEIGHT
  // The MySensors distance sketch sends cm when metric, inches when imperial.
  [13, { metric: "distance", unit: "cm", convert: distance }], // V_DISTANCE
  [14, { metric: "impedance", unit: "Ohm" }], // V_IMPEDANCE
  [15, { metric: "armed" }], // V_ARMED: 1 armed, 0 bypassed
  [16, { metric: "tripped" }], // V_TRIPPED: 1 tripped
  [17, { metric: "power", unit: "W" }], // V_WATT
  [18, { metric: "energy", unit: "kWh" }], // V_KWH
  // "Uncalibrated light level. 0-100%. Use V_LEVEL for light level in lux" (MyMessage.h).
  [23, { metric: "light_level", unit: "%" }], // V_LIGHT_LEVEL
  [24, { metric: "var1" }], // V_VAR1..5: free-form; numeric ones are kept
  [25, { metric: "var2" }],
  [26, { metric: "var3" }],
  [27, { metric: "var4" }],
  [28, { metric: "var5" }],
  [34, { metric: "flow" }], // V_FLOW
  [35, { metric: "volume" }], // V_VOLUME
  [36, { metric: "lock_status" }], // V_LOCK_STATUS: 1 locked
  [37, { metric: "level" }], // V_LEVEL: meaning depends on the child's sensor type, see below
  [38, { metric: "voltage", unit: "V" }], // V_VOLTAGE
  [39, { metric: "current", unit: "A" }], // V_CURRENT
  [44, { metric: "setpoint_cool", unit: "Cel", convert: temperature }], // V_HVAC_SETPOINT_COOL
  [45, { metric: "setpoint_heat", unit: "Cel", convert: temperature }], // V_HVAC_SETPOINT_HEAT
  [51, { metric: "ph", unit: "pH" }], // V_PH
  [52, { metric: "orp", unit: "mV" }], // V_ORP: "redox potential in mV"
  // "μS/cm": not a SenML unit (SenML has S/m); kept in the unit the sensor uses.
  [53, { metric: "conductivity", unit: "uS/cm" }], // V_EC
  [54, { metric: "reactive_power", unit: "var" }], // V_VAR
  [55, { metric: "apparent_power", unit: "VA" }], // V_VA
  [56, { metric: "power_factor" }], // V_POWER_FACTOR: -1..1
]);

/**
 * Variable types whose payload is text or a command, not a measurement: forecast words,
 * scene/cover commands, IR codes, RGB hex, ids, unit prefixes, HVAC modes, LCD text, custom,
 * GPS position (`lat;lon;alt`), multi-message. Decoded as `ignored`, category `non_numeric`.
 */
export const MYS_TEXT_VARIABLES: ReadonlySet<number> = new Set([
  5, 19, 20, 21, 22, 29, 30, 31, 32, 33, 40, 41, 42, 43, 46, 47, 48, 49, 50, 57,
]);

/**
 * V_LEVEL is "S_DUST, S_AIR_QUALITY, S_SOUND (dB), S_VIBRATION (hz), S_LIGHT_LEVEL (lux)"
 * (MyMessage.h): the unit depends on what the child presented itself as. When the caller can
 * say (the controller remembers presentations), the reading gets a specific metric.
 */
export const MYS_LEVEL_BY_SENSOR_TYPE: ReadonlyMap<number, MysVariableRule> = new Map<number, MysVariableRule>([
  [MysSensorType.LIGHT_LEVEL, { metric: "light", unit: "lx" }],
  // dB is not a SenML unit (SenML has Bspl, bels); the value stays in dB, unit left out.
  [MysSensorType.SOUND, { metric: "sound_level" }],
  [MysSensorType.VIBRATION, { metric: "vibration", unit: "Hz" }],
  [MysSensorType.MOISTURE, { metric: "moisture", unit: "%" }],
  [MysSensorType.DUST, { metric: "dust" }],
  [MysSensorType.AIR_QUALITY, { metric: "air_quality" }],
]);
