import {
  encodeJsonl,
  encodeMySensors,
  encodeRtl433,
  encodeXBee,
  EncodeError,
  MYS_FIRST_NODE_ID,
  MYS_LAST_NODE_ID,
  MYS_NODE_CHILD_ID,
  MysCommand,
  MysInternal,
  MysSensorType,
  MysVariable,
  type ProtocolName,
} from "../../protocols/index";
import type { MalformedSpec } from "../samples/faults";
import type { Measurement, SensorMessage } from "../samples/kinds";
import { garbage, JSON_LINE_MALFORMED, malformJson, pickVariant } from "./malformed";
import { multiObject } from "./mqtt-format";
import { NodeIds } from "./node-ids";
import type { MessageEncoder, OutMessage } from "./types";

/**
 * Encoders for the radio protocols, built on the codecs' own encode functions, so what the
 * simulator writes to a serial port is exactly what the gateway's parsers read.
 * Serial output has no topic; OutMessage.topic is left empty.
 */
export function createSerialEncoder(protocol: ProtocolName): MessageEncoder {
  switch (protocol) {
    case "jsonl":
      return new JsonlEncoder();
    case "mysensors":
      return new MySensorsEncoder();
    case "xbee":
      return new XBeeEncoder(1);
    case "xbee2":
      return new XBeeEncoder(2);
    case "rtl433":
      return new Rtl433Encoder();
  }
}

const out = (payload: Buffer): OutMessage => ({ topic: "", payload });

function damagedLine(obj: Record<string, unknown>, firstMetric: string | undefined, spec: MalformedSpec): Buffer {
  const bad = malformJson(obj, firstMetric, pickVariant(JSON_LINE_MALFORMED, spec.variant), spec.at);
  return Buffer.concat([bad, Buffer.from("\n")]);
}

/** `{"sensor": id, <metric>: value, ..., "ts": ms}\n`, the same object as MQTT's multi format. */
class JsonlEncoder implements MessageEncoder {
  readonly name = "jsonl";
  readonly malformedVariants = JSON_LINE_MALFORMED;
  encode(m: SensorMessage, malformed?: MalformedSpec): OutMessage[] {
    const obj = multiObject(m);
    return [out(malformed ? damagedLine(obj, m.metrics[0]?.metric, malformed) : encodeJsonl(obj))];
  }
}

/**
 * MySensors: one child per metric, as a sketch presents them (S_ type), one C_SET line each.
 * The first message of a node is preceded by its presentation, which is how a controller learns
 * that V_LEVEL on child 2 is a light level in lux. The serial API carries no time: the gateway
 * stamps these readings with its receive time.
 */
const MYS_CHILDREN: Readonly<Record<string, { child: number; sensorType: number; variable: number; scale?: number }>> =
  {
    temperature: { child: 0, sensorType: 6 /* S_TEMP */, variable: MysVariable.TEMP },
    humidity: { child: 1, sensorType: 7 /* S_HUM */, variable: MysVariable.HUM },
    light: { child: 2, sensorType: MysSensorType.LIGHT_LEVEL, variable: MysVariable.LEVEL },
    // The MySensors pressure sketch sends hPa (the decoder's default).
    pressure: { child: 3, sensorType: 8 /* S_BARO */, variable: MysVariable.PRESSURE, scale: 0.01 },
    battery: { child: 4, sensorType: 30 /* S_MULTIMETER */, variable: MysVariable.VOLTAGE },
    voltage: { child: 4, sensorType: 30 /* S_MULTIMETER */, variable: MysVariable.VOLTAGE },
  };
const MYS_LIBRARY_VERSION = "2.3.2";

class MySensorsEncoder implements MessageEncoder {
  readonly name = "mysensors";
  readonly malformedVariants = ["too_few_fields", "bad_header", "garbage"] as const;
  private readonly nodes = new NodeIds(MYS_FIRST_NODE_ID, MYS_LAST_NODE_ID, "MySensors");

  encode(m: SensorMessage, malformed?: MalformedSpec): OutMessage[] {
    const children = m.metrics.map((x) => {
      const c = MYS_CHILDREN[x.metric];
      if (!c)
        throw new EncodeError(
          `MySensors has no variable for metric "${x.metric}" (it carries ${Object.keys(MYS_CHILDREN).join(", ")})`,
        );
      return { x, c };
    });
    const { node, isNew } = this.nodes.of(m.sensorId);
    const lines: Buffer[] = [];
    if (isNew) {
      const present = (child: number, type: number, payload: string) =>
        encodeMySensors({ nodeId: node, childId: child, command: MysCommand.PRESENTATION, ack: 0, type, payload });
      lines.push(present(MYS_NODE_CHILD_ID, MysSensorType.ARDUINO_NODE, MYS_LIBRARY_VERSION));
      lines.push(
        encodeMySensors({
          nodeId: node,
          childId: MYS_NODE_CHILD_ID,
          command: MysCommand.INTERNAL,
          ack: 0,
          type: MysInternal.SKETCH_NAME,
          payload: m.sensorId.slice(0, 25),
        }),
      );
      for (const { x, c } of children) lines.push(present(c.child, c.sensorType, x.metric));
    }
    children.forEach(({ x, c }, i) => {
      const value = c.scale === undefined ? x.value : Number((x.value * c.scale).toPrecision(12));
      if (malformed && i === 0) lines.push(this.damaged(node, c.child, c.variable, value, malformed));
      else
        lines.push(
          encodeMySensors({
            nodeId: node,
            childId: c.child,
            command: MysCommand.SET,
            ack: 0,
            type: c.variable,
            payload: String(value),
          }),
        );
    });
    return [out(Buffer.concat(lines))];
  }

  private damaged(node: number, child: number, variable: number, value: number, spec: MalformedSpec): Buffer {
    switch (pickVariant(this.malformedVariants, spec.variant)) {
      case "too_few_fields":
        return Buffer.from(`${node};${child};${MysCommand.SET}\n`);
      case "bad_header":
        // Node ids are uint8 in the radio message: 300 cannot come from a working node.
        return Buffer.from(`300;${child};${MysCommand.SET};0;${variable};${value}\n`);
      default:
        return Buffer.concat([garbage(spec.at), Buffer.from("\n")]);
    }
  }
}

/**
 * XBee: a 0x90 Receive Packet from the node's 64-bit address (Digi's OUI prefix 0013A200 plus
 * the node number), with the sketch's payload as `metric=value,...,ts=ms` text. API mode 2
 * escapes the frame. A damaged frame has one payload digit changed, so its checksum fails,
 * which is how radio corruption shows up at the coordinator's serial port.
 */
class XBeeEncoder implements MessageEncoder {
  readonly name: string;
  readonly malformedVariants = ["bad_checksum"] as const;
  private readonly nodes = new NodeIds(1, 0xffff_ffff, "XBee");

  constructor(private readonly mode: 1 | 2) {
    this.name = mode === 1 ? "xbee" : "xbee2";
  }

  encode(m: SensorMessage, malformed?: MalformedSpec): OutMessage[] {
    const { node } = this.nodes.of(m.sensorId);
    const pairs = m.metrics.map((x) => {
      if (!/^[A-Za-z0-9_.-]+$/.test(x.metric))
        throw new EncodeError(`metric "${x.metric}" cannot be a key=value key in an XBee payload`);
      return `${x.metric}=${x.value}`;
    });
    if (m.ts !== undefined) pairs.push(`ts=${m.ts}`);
    const frame = encodeXBee(
      { type: 0x90, source64: `0013a200${node.toString(16).padStart(8, "0")}`, data: pairs.join(",") },
      this.mode,
    );
    if (malformed) {
      // Digits are never escaped in API mode 2, so changing one keeps the framing intact.
      for (let i = frame.length - 2; i > 0; i--) {
        const b = frame[i]!;
        if (b >= 0x30 && b <= 0x39) {
          frame[i] = 0x30 + ((b - 0x30 + 1) % 10);
          break;
        }
      }
    }
    return [out(frame)];
  }
}

/**
 * rtl_433 JSON lines as `rtl_433 -F json -M time:iso:tz` prints them, for a pretend model
 * "DataLab-Sim" whose `id` is the node number. Field names are rtl_433's (temperature_C,
 * pressure_hPa, light_lux, battery_mV).
 */
const RTL433_FIELDS: Readonly<Record<string, (v: number) => [string, number]>> = {
  temperature: (v) => ["temperature_C", v],
  humidity: (v) => ["humidity", v],
  light: (v) => ["light_lux", v],
  pressure: (v) => ["pressure_hPa", Number((v / 100).toPrecision(12))],
  battery: (v) => ["battery_mV", Math.round(v * 1000)],
  voltage: (v) => ["battery_mV", Math.round(v * 1000)],
};

class Rtl433Encoder implements MessageEncoder {
  readonly name = "rtl433";
  readonly malformedVariants = JSON_LINE_MALFORMED;
  private readonly nodes = new NodeIds(1, 0xffff, "rtl_433");

  encode(m: SensorMessage, malformed?: MalformedSpec): OutMessage[] {
    const { node } = this.nodes.of(m.sensorId);
    const obj: Record<string, unknown> = {};
    if (m.ts !== undefined) obj.time = new Date(m.ts).toISOString();
    obj.model = "DataLab-Sim";
    obj.id = node;
    let first: string | undefined;
    for (const x of m.metrics) {
      const [key, value] = fieldOf(x);
      obj[key] = value;
      first ??= key;
    }
    if (malformed) return [out(damagedLine(obj, first, malformed))];
    return [out(encodeRtl433(obj as Record<string, unknown> & { model: string }))];
  }
}

function fieldOf(x: Measurement): [string, number] {
  const f = RTL433_FIELDS[x.metric];
  if (!f)
    throw new EncodeError(
      `rtl_433 output has no field for metric "${x.metric}" (it carries ${Object.keys(RTL433_FIELDS).join(", ")})`,
    );
  return f(x.value);
}
