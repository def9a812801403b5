export { Simulator, toMqttMessages, type SimulatorOptions, type SimulatorFormat } from "./simulate/simulator";
export { SensorModel, type SimulatedSample } from "./simulate/model";
export { Prng, seedOf } from "./simulate/prng";
export { publishSimulation, type PublishOptions } from "./simulate/mqtt-output";
