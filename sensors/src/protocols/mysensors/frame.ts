import { EncodeError } from "../common/errors";
import { asBuffer } from "../common/parser";
import { frameError, frameOk, type FrameResult } from "../common/result";

export interface MySensorsFields {
  readonly nodeId: number;
  readonly childId: number;
  readonly command: number;
  readonly ack: number;
  readonly type: number;
  readonly payload: string;
}

const HEADER_FIELDS = ["node id", "child id", "command", "ack", "type"] as const;
/** Header fields are uint8 in the radio message (MyMessage.h); the serial form prints them in decimal. */
const UINT8 = /^\d{1,3}$/;

/**
 * One serial-API line, `node;child;command;ack;type;payload`. The protocol has no checksum on
 * the serial side (the radio layer has its own); validity here means six fields with the
 * first five uint8 numbers and ack 0 or 1.
 */
export class MySensorsMessage implements MySensorsFields {
  readonly nodeId: number;
  readonly childId: number;
  readonly command: number;
  readonly ack: number;
  readonly type: number;
  readonly payload: string;

  constructor(fields: MySensorsFields) {
    this.nodeId = fields.nodeId;
    this.childId = fields.childId;
    this.command = fields.command;
    this.ack = fields.ack;
    this.type = fields.type;
    this.payload = fields.payload;
  }

  static fromBuffer(line: Uint8Array): FrameResult<MySensorsMessage> {
    return MySensorsMessage.fromLine(asBuffer(line).toString("utf8"));
  }

  /**
   * Parses one line without its terminator. The payload is everything after the fifth `;`,
   * semicolons included: V_POSITION payloads are `lat;lon;alt` (MyMessage.h). The Arduino
   * gateway's own parser (strtok) would cut them at the first `;`; keeping them loses nothing.
   */
  static fromLine(line: string): FrameResult<MySensorsMessage> {
    const header: number[] = [];
    let start = 0;
    for (let field = 0; field < HEADER_FIELDS.length; field++) {
      const end = line.indexOf(";", start);
      if (end === -1) {
        return frameError("bad_field", `expected 6 ';'-separated fields, found ${field + 1}`);
      }
      const text = line.slice(start, end);
      if (!UINT8.test(text) || Number(text) > 255) {
        return frameError(
          "bad_field",
          `${HEADER_FIELDS[field]} ${JSON.stringify(text.slice(0, 20))} is not a number 0..255`,
        );
      }
      header.push(Number(text));
      start = end + 1;
    }
    const [nodeId, childId, command, ack, type] = header as [number, number, number, number, number];
    if (ack > 1) return frameError("bad_field", `ack ${ack} is not 0 or 1`);
    return frameOk(new MySensorsMessage({ nodeId, childId, command, ack, type, payload: line.slice(start) }));
  }

  /** The line as the gateway expects it on its serial port, `\n` included. */
  toLine(): string {
    return `${this.nodeId};${this.childId};${this.command};${this.ack};${this.type};${this.payload}\n`;
  }

  toBuffer(): Buffer {
    return Buffer.from(this.toLine(), "utf8");
  }

  /** Builds a message, refusing values the wire format cannot carry (a programmer error). */
  static create(fields: MySensorsFields): MySensorsMessage {
    const header = [fields.nodeId, fields.childId, fields.command, fields.ack, fields.type];
    header.forEach((value, i) => {
      if (!Number.isInteger(value) || value < 0 || value > 255) {
        throw new EncodeError(`${HEADER_FIELDS[i]} must be an integer 0..255, got ${value}`);
      }
    });
    if (fields.ack > 1) throw new EncodeError(`ack must be 0 or 1, got ${fields.ack}`);
    if (/[\r\n]/.test(fields.payload)) throw new EncodeError("payload must not contain a line break");
    return new MySensorsMessage(fields);
  }
}
