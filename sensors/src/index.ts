export { Simulator, toMqttMessages, type SimulatorOptions, type SimulatorFormat } from "./simulate/simulator";
export { SensorModel, DEFAULT_BATTERY_LIFE, type SensorModelOptions } from "./simulate/model";
export {
  DEFAULT_KINDS,
  KIND_UNITS,
  SENSOR_KINDS,
  sampleToMessage,
  type Measurement,
  type SensorKind,
  type SensorMessage,
  type SimulatedSample,
} from "./simulate/samples/kinds";
export {
  Battery,
  SensorClock,
  misbehaviourLevel,
  MISBEHAVE_BELOW_V,
  SATURATED_TEMPERATURE,
} from "./simulate/behaviours";
export {
  FaultInjector,
  type Emission,
  type FaultCounts,
  type FaultOptions,
  type MalformedSpec,
} from "./simulate/samples/faults";
export { Prng, seedOf } from "./simulate/samples/prng";
export { Pacer, type Speed } from "./simulate/pacer";
export { ProgressLine, duration } from "./simulate/progress";
export { runSimulation, type RunSimulationOptions, type SimulationStats } from "./simulate/run";
export { publishSimulation, type PublishOptions } from "./simulate/mqtt-output";
export * from "./simulate/outputs/index";
export * from "./replay/index";
// Radio protocol codecs (serial sources in the gateway, encoders for simulators).
export * from "./protocols/index";
