import Database from "better-sqlite3";
import { errorMessage, type Logger } from "@datalab/shared";
import {
  MySensorsController,
  type ControllerStorage,
  type MySensorsMessage,
  type MysNodeMetadata,
  type MysUnitSystem,
} from "@datalab/sensors";
import { ThrottledLog } from "@datalab/shared";

/**
 * The MySensors controller's memory: node ids handed out and what each node presented, in
 * a small SQLite file of its own (`<dataDir>/mysensors.db`), apart from the outbox so the
 * two schemas never meet. A key-value table is all the controller asks for.
 *
 * One file for every MySensors port of the gateway: node ids are also gateway-wide in the
 * sensor ids (`mys-<node>-<child>`), so two radio networks must not share an id anyway, and
 * handing ids out of one pool guarantees they do not.
 */
export class SqliteControllerStorage implements ControllerStorage {
  readonly #db: Database.Database;
  readonly #get: Database.Statement<[string], { value: string }>;
  readonly #set: Database.Statement<[string, string]>;
  readonly #keys: Database.Statement<[string], { key: string }>;

  constructor(readonly path: string) {
    this.#db = new Database(path);
    this.#db.pragma("journal_mode = WAL");
    // An id handed out must survive a power cut, or the next node could get it again.
    this.#db.pragma("synchronous = FULL");
    // Several MySensors ports (one controller each) may write at once.
    this.#db.pragma("busy_timeout = 2000");
    this.#db.exec("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
    this.#get = this.#db.prepare("SELECT value FROM kv WHERE key = ?");
    this.#set = this.#db.prepare(
      "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    this.#keys = this.#db.prepare("SELECT key FROM kv WHERE key LIKE ? ORDER BY key");
  }

  get(key: string): string | undefined {
    return this.#get.get(key)?.value;
  }

  set(key: string, value: string): void {
    this.#set.run(key, value);
  }

  keys(prefix: string): string[] {
    return this.#keys.all(`${prefix.replace(/[%_]/g, "")}%`).map((r) => r.key);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

/** The controller's keys are `mysensors/node/<id>` (sensors/src/protocols/mysensors/controller.ts). */
const NODE_KEY_PREFIX = "mysensors/node/";

export interface MySensorsRoleOptions {
  storagePath: string;
  unitSystem: MysUnitSystem;
  logger: Logger;
  now?: () => number;
}

/**
 * The controller role on one MySensors serial gateway: each parsed message goes through the
 * controller first (so a presentation is known before the next reading is decoded), and the
 * lines it answers with (ID response, time, config) are written back to the port.
 */
export class MySensorsRole {
  #storage: SqliteControllerStorage | undefined;
  #controller: MySensorsController | undefined;
  #problem: string | undefined;
  readonly #log: ThrottledLog;

  constructor(private readonly opts: MySensorsRoleOptions) {
    this.#log = new ThrottledLog(opts.logger);
  }

  /**
   * Opens the storage. When it cannot be opened, readings still flow but ID requests go
   * unanswered: guessing ids without memory could give two nodes the same one.
   */
  open(): void {
    if (this.#controller) return;
    try {
      this.#storage = new SqliteControllerStorage(this.opts.storagePath);
      this.#controller = new MySensorsController({
        storage: this.#storage,
        unitSystem: this.opts.unitSystem,
        ...(this.opts.now ? { now: this.opts.now } : {}),
      });
      this.#problem = undefined;
    } catch (err) {
      this.#problem =
        `MySensors controller storage ${this.opts.storagePath} cannot be opened (${errorMessage(err)}); ` +
        "ID requests are not answered";
      this.opts.logger.error(
        { err: errorMessage(err), path: this.opts.storagePath },
        "MySensors controller storage cannot be opened; readings still flow, ID requests are not answered",
      );
    }
  }

  close(): void {
    this.#storage?.close();
    this.#storage = undefined;
    this.#controller = undefined;
  }

  get problem(): string | undefined {
    return this.#problem;
  }

  /** For the decoder: the S_ type a child presented as (refines V_LEVEL and friends). */
  sensorTypeOf(nodeId: number, childId: number): number | undefined {
    try {
      return this.#controller?.sensorTypeOf(nodeId, childId);
    } catch {
      return undefined; // storage read failed: decode without the hint
    }
  }

  /** Lines to write back to the port for this message (often none). Never throws. */
  handle(msg: MySensorsMessage): string[] {
    const controller = this.#controller;
    if (!controller) return [];
    try {
      const result = controller.handle(msg);
      if (result.warning) this.#log.warn("warning", { node: msg.nodeId }, result.warning);
      if (result.metadata) this.opts.logger.debug({ node: result.metadata }, "MySensors node metadata updated");
      return result.replies;
    } catch (err) {
      this.#log.error(
        "storage",
        { err: errorMessage(err) },
        "MySensors controller storage failed; message not answered",
      );
      return [];
    }
  }

  /** What the controller knows: node ids and presentations, for the gateway's status. */
  nodes(): MysNodeMetadata[] {
    const controller = this.#controller;
    const storage = this.#storage;
    if (!controller || !storage) return [];
    try {
      const out: MysNodeMetadata[] = [];
      for (const key of storage.keys(NODE_KEY_PREFIX)) {
        const node = controller.node(Number(key.slice(NODE_KEY_PREFIX.length)));
        if (node) out.push(node);
      }
      return out.sort((a, b) => a.nodeId - b.nodeId);
    } catch {
      return [];
    }
  }
}
