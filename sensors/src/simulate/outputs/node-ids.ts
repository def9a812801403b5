import { EncodeError } from "../../protocols/index";

/**
 * Radio protocols address nodes by number (MySensors 1..254, an XBee by its 64-bit address),
 * not by name. This gives each sensor id a stable number: its trailing digits when those are
 * free and in range (`sim-7` → 7, a replayed mote `12` → 12), else the lowest free number.
 */
export class NodeIds {
  private readonly byId = new Map<string, number>();
  private readonly used = new Set<number>();
  private nextFree: number;

  constructor(
    private readonly min: number,
    private readonly max: number,
    private readonly protocol: string,
  ) {
    this.nextFree = min;
  }

  of(sensorId: string): { node: number; isNew: boolean } {
    const known = this.byId.get(sensorId);
    if (known !== undefined) return { node: known, isNew: false };
    const m = /(\d+)$/.exec(sensorId);
    let node = m ? Number(m[1]) : NaN;
    if (!(node >= this.min && node <= this.max) || this.used.has(node)) {
      while (this.used.has(this.nextFree)) this.nextFree += 1;
      node = this.nextFree;
    }
    if (node > this.max)
      throw new EncodeError(
        `${this.protocol} addresses at most ${this.max - this.min + 1} nodes; sensor "${sensorId}" is one too many`,
      );
    this.byId.set(sensorId, node);
    this.used.add(node);
    return { node, isNew: true };
  }
}
