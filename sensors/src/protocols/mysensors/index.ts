export {
  MYS_AUTO_NODE_ID,
  MYS_COMMAND_NAMES,
  MYS_DEFAULT_MAX_LINE_LENGTH,
  MYS_FIRST_NODE_ID,
  MYS_GATEWAY_NODE_ID,
  MYS_INTERNAL_NAMES,
  MYS_LAST_NODE_ID,
  MYS_NODE_CHILD_ID,
  MYS_SENSOR_TYPE_NAMES,
  MYS_VARIABLE_NAMES,
  MysCommand,
  MysInternal,
  MysSensorType,
  MysVariable,
} from "./constants";
export { MySensorsMessage, type MySensorsFields } from "./frame";
export { MySensorsParser, MySensorsParserStream, type MySensorsParserOptions } from "./parser";
export {
  MYS_LEVEL_BY_SENSOR_TYPE,
  MYS_TEXT_VARIABLES,
  MYS_VARIABLE_RULES,
  type MysPressureUnit,
  type MysUnitSystem,
  type MysVariableRule,
} from "./variables";
export {
  decodeMySensors,
  mysSensorId,
  type MySensorsDecodeOptions,
  type MySensorsIgnoredCategory,
} from "./decode";
export { encodeMySensors, encodeMySensorsSet } from "./encode";
export { MemoryControllerStorage, type ControllerStorage } from "./storage";
export {
  MySensorsController,
  type MysChildMetadata,
  type MysControllerResult,
  type MysNodeMetadata,
  type MySensorsControllerOptions,
} from "./controller";
