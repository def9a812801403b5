import { MqttEncoder, type SimulatorFormat } from "./mqtt-format";
import { MqttOutput } from "./mqtt";
import { openSerialOutput } from "./serial";
import { createSerialEncoder } from "./serial-format";
import type { OutputSpec } from "./spec";
import { stdoutOutput } from "./stream";
import type { MessageEncoder, Output } from "./types";

export { MqttEncoder, multiObject, toMqttMessages, type SimulatorFormat } from "./mqtt-format";
export { createSerialEncoder } from "./serial-format";
export { MqttOutput, type MqttOutputOptions } from "./mqtt";
export { StreamOutput, stdoutOutput } from "./stream";
export { openSerialOutput } from "./serial";
export { describeSpec, OUTPUT_SPEC_HELP, parseOutputSpec, type OutputSpec } from "./spec";
export { OutputError, type MessageEncoder, type OutMessage, type Output } from "./types";

export interface OutputSettings {
  mqttUrl: string;
  qos: 0 | 1;
  /** MQTT only. */
  format: SimulatorFormat;
  topicRoot: string;
}

/** The encoder for a spec: MQTT formats for `mqtt`, the named protocol's codec otherwise. */
export function createEncoder(spec: OutputSpec, s: Pick<OutputSettings, "format" | "topicRoot">): MessageEncoder {
  return spec.kind === "mqtt" ? new MqttEncoder(s.format, s.topicRoot) : createSerialEncoder(spec.protocol);
}

/** Opens the output; only the chosen kind's module does any I/O (serialport loads lazily). */
export async function openOutput(spec: OutputSpec, s: Pick<OutputSettings, "mqttUrl" | "qos">): Promise<Output> {
  switch (spec.kind) {
    case "mqtt":
      return MqttOutput.connect({ url: s.mqttUrl, qos: s.qos });
    case "stdout":
      return stdoutOutput();
    case "serial":
      return openSerialOutput(spec.path, spec.baudRate);
  }
}
