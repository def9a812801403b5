import { MysCommand } from "./constants";
import { MySensorsMessage, type MySensorsFields } from "./frame";

/** One serial line, `\n` included. Throws EncodeError for values the format cannot carry. */
export function encodeMySensors(fields: MySensorsFields): Buffer {
  return MySensorsMessage.create(fields).toBuffer();
}

/** A C_SET line as a node would send it through the gateway, e.g. `46;0;1;0;0;20.3\n`. */
export function encodeMySensorsSet(
  nodeId: number,
  childId: number,
  variableType: number,
  value: number | string,
): Buffer {
  return encodeMySensors({
    nodeId,
    childId,
    command: MysCommand.SET,
    ack: 0,
    type: variableType,
    payload: String(value),
  });
}
