import {
  MYS_FIRST_NODE_ID,
  MYS_LAST_NODE_ID,
  MYS_NODE_CHILD_ID,
  MYS_SENSOR_TYPE_NAMES,
  MysCommand,
  MysInternal,
  MysSensorType,
  nameOf,
} from "./constants";
import { MySensorsMessage } from "./frame";
import type { ControllerStorage } from "./storage";
import type { MysUnitSystem } from "./variables";

export interface MysChildMetadata {
  /** S_ type number from the presentation. */
  readonly type: number;
  readonly typeName: string;
  /** Free text the sketch passed to `present()`, often empty. */
  readonly description: string;
}

/** What the controller knows about a node, as stored and as returned to the gateway. */
export interface MysNodeMetadata {
  readonly nodeId: number;
  readonly sketchName?: string;
  readonly sketchVersion?: string;
  /** MySensors library version, from the node's own presentation (child 255). */
  readonly libraryVersion?: string;
  readonly repeater?: boolean;
  /** Keyed by child id. */
  readonly children: Readonly<Record<string, MysChildMetadata>>;
  /** Epoch ms when this controller handed out the id; absent for nodes with a static id. */
  readonly assignedAt?: number;
  /** Epoch ms when a message from this id was first heard before any presentation or assignment. */
  readonly firstSeenAt?: number;
  readonly updatedAt: number;
}

export interface MysControllerResult {
  /** Lines to write to the gateway's serial port, each ending in `\n`. */
  readonly replies: string[];
  /** The node's metadata after this message changed it; absent when nothing changed. */
  readonly metadata?: MysNodeMetadata;
  /** Something an operator should see (e.g. all 254 node ids are taken). */
  readonly warning?: string;
}

export interface MySensorsControllerOptions {
  readonly storage: ControllerStorage;
  /** Epoch milliseconds; inject a fixed clock in tests. */
  readonly now?: () => number;
  /** I_CONFIG answer: "M" metric (default) or "I" imperial. Use the same value for decoding. */
  readonly unitSystem?: MysUnitSystem;
  /**
   * I_TIME answer. The spec says "seconds since 1970"; several controllers (pymysensors,
   * hence Home Assistant) send local wall-clock time as if it were UTC so that nodes with a
   * display show local time. "utc" (default) follows the spec; "local" copies that habit,
   * using the gateway's time zone.
   */
  readonly nodeTime?: "utc" | "local";
}

const NODE_KEY_PREFIX = "mysensors/node/";
const NO_REPLY: MysControllerResult = Object.freeze({ replies: [] });

/**
 * The controller side of the MySensors serial protocol, as pure logic: it takes a parsed
 * message and returns the lines to write back. The gateway owns the serial port and storage.
 * Handles I_ID_REQUEST (hands out node ids 1..254, lowest free first, persistently),
 * I_TIME, I_CONFIG, and records presentations, I_SKETCH_NAME and I_SKETCH_VERSION. Every
 * node id heard in any message is recorded as taken, presented or not.
 */
export class MySensorsController {
  readonly #storage: ControllerStorage;
  readonly #now: () => number;
  readonly #unitSystem: MysUnitSystem;
  readonly #nodeTime: "utc" | "local";
  readonly #cache = new Map<number, MysNodeMetadata>();

  constructor(options: MySensorsControllerOptions) {
    this.#storage = options.storage;
    this.#now = options.now ?? Date.now;
    this.#unitSystem = options.unitSystem ?? "M";
    this.#nodeTime = options.nodeTime ?? "utc";
  }

  handle(msg: MySensorsMessage): MysControllerResult {
    if (msg.command === MysCommand.PRESENTATION) return this.#presentation(msg);
    // A node may run with a static id and never present: any id heard on the line is in use.
    const claimed = this.#claim(msg.nodeId);
    if (msg.command !== MysCommand.INTERNAL) return claimed;
    switch (msg.type) {
      case MysInternal.ID_REQUEST:
        return this.#assignId(msg);
      case MysInternal.TIME:
        return { replies: [this.#reply(msg, MysInternal.TIME, String(this.#nodeSeconds()))] };
      case MysInternal.CONFIG:
        return { replies: [this.#reply(msg, MysInternal.CONFIG, this.#unitSystem)] };
      case MysInternal.SKETCH_NAME:
        return this.#update(msg.nodeId, (node) => ({ ...node, sketchName: msg.payload }));
      case MysInternal.SKETCH_VERSION:
        return this.#update(msg.nodeId, (node) => ({ ...node, sketchVersion: msg.payload }));
      default:
        return claimed;
    }
  }

  /** Records a node id the controller did not know, so it is never handed out; persisted at once. */
  #claim(nodeId: number): MysControllerResult {
    if (nodeId < MYS_FIRST_NODE_ID || nodeId > MYS_LAST_NODE_ID || this.node(nodeId) !== undefined) return NO_REPLY;
    const now = this.#now();
    const node: MysNodeMetadata = { nodeId, children: {}, firstSeenAt: now, updatedAt: now };
    this.#save(node);
    return { replies: [], metadata: node };
  }

  node(nodeId: number): MysNodeMetadata | undefined {
    const cached = this.#cache.get(nodeId);
    if (cached) return cached;
    const stored = this.#storage.get(NODE_KEY_PREFIX + nodeId);
    if (stored === undefined) return undefined;
    const node = parseStored(nodeId, stored, this.#now());
    this.#cache.set(nodeId, node);
    return node;
  }

  /** The S_ type a child presented as; pass to `decodeMySensors` as `sensorTypeOf`. */
  sensorTypeOf(nodeId: number, childId: number): number | undefined {
    return this.node(nodeId)?.children[String(childId)]?.type;
  }

  #assignId(msg: MySensorsMessage): MysControllerResult {
    for (let id = MYS_FIRST_NODE_ID; id <= MYS_LAST_NODE_ID; id++) {
      // Storage is the truth: another controller instance sharing it may have assigned ids.
      if (this.#cache.has(id) || this.#storage.get(NODE_KEY_PREFIX + id) !== undefined) continue;
      const now = this.#now();
      const node: MysNodeMetadata = { nodeId: id, children: {}, assignedAt: now, updatedAt: now };
      this.#save(node);
      return { replies: [this.#reply(msg, MysInternal.ID_RESPONSE, String(id))], metadata: node };
    }
    return {
      replies: [],
      warning:
        `no free MySensors node id (${MYS_FIRST_NODE_ID}..${MYS_LAST_NODE_ID} all assigned); ` +
        "ID request not answered",
    };
  }

  #presentation(msg: MySensorsMessage): MysControllerResult {
    if (
      msg.childId === MYS_NODE_CHILD_ID &&
      (msg.type === MysSensorType.ARDUINO_NODE || msg.type === MysSensorType.ARDUINO_REPEATER_NODE)
    ) {
      // A node presents itself on child 255 with its library version as payload.
      return this.#update(msg.nodeId, (node) => ({
        ...node,
        libraryVersion: msg.payload,
        repeater: msg.type === MysSensorType.ARDUINO_REPEATER_NODE,
      }));
    }
    const child: MysChildMetadata = {
      type: msg.type,
      typeName: nameOf(MYS_SENSOR_TYPE_NAMES, msg.type, "S_"),
      description: msg.payload,
    };
    return this.#update(msg.nodeId, (node) => ({
      ...node,
      children: { ...node.children, [String(msg.childId)]: child },
    }));
  }

  #update(nodeId: number, change: (node: MysNodeMetadata) => MysNodeMetadata): MysControllerResult {
    const now = this.#now();
    const before = this.node(nodeId) ?? { nodeId, children: {}, updatedAt: now };
    const after = { ...change(before), updatedAt: now };
    this.#save(after);
    return { replies: [], metadata: after };
  }

  #save(node: MysNodeMetadata): void {
    this.#storage.set(NODE_KEY_PREFIX + node.nodeId, JSON.stringify(node));
    this.#cache.set(node.nodeId, node);
  }

  /** Replies go back to the requesting node and child, as C_INTERNAL with ack 0. */
  #reply(msg: MySensorsMessage, type: number, payload: string): string {
    return MySensorsMessage.create({
      nodeId: msg.nodeId,
      childId: msg.childId,
      command: MysCommand.INTERNAL,
      ack: 0,
      type,
      payload,
    }).toLine();
  }

  #nodeSeconds(): number {
    const ms = this.#now();
    const offsetMs = this.#nodeTime === "local" ? -new Date(ms).getTimezoneOffset() * 60_000 : 0;
    return Math.floor((ms + offsetMs) / 1000);
  }
}

/**
 * A stored record that no longer parses still marks its id as taken (the node may be out
 * there using it); its metadata starts over.
 */
function parseStored(nodeId: number, stored: string, now: number): MysNodeMetadata {
  try {
    const value = JSON.parse(stored) as Partial<MysNodeMetadata> | null;
    if (value && typeof value === "object" && typeof value.children === "object" && value.children !== null) {
      return { ...value, nodeId, children: value.children, updatedAt: value.updatedAt ?? now };
    }
  } catch {
    // fall through
  }
  return { nodeId, children: {}, updatedAt: now };
}
