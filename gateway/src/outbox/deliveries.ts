import type BetterSqlite3 from "better-sqlite3";

/**
 * A message from a source that resends what it was not told was kept (MQTT QoS 1): the
 * source acknowledges it only once the transaction holding its readings has committed.
 */
export interface Delivery {
  /** The MQTT packet identifier: the broker resends an unacknowledged message under the same one. */
  readonly id: number;
  /** A digest of the topic and payload, telling a resend from a new message that reuses the id. */
  readonly digest: number;
  readonly owner: DeliveryOwner;
}

export interface DeliveryOwner {
  /** The transaction holding these messages committed: acknowledge them. */
  settled(deliveries: readonly Delivery[]): void;
  /**
   * Commits failed for long enough that these messages were let go from memory, never
   * acknowledged: the sender still has them and must be made to send them again.
   */
  returned(deliveries: readonly Delivery[]): void;
}

/**
 * How far back (in committed messages) a resend is looked for. The broker resends only what
 * it has in flight to the gateway (at most its in-flight window, or the gateway's MQTT 5
 * Receive Maximum); ids are reused only after they were acknowledged, and a broker that hands
 * them out in turn (Mosquitto) reuses one only after 65,535 others, so a window below that
 * never mistakes a new message for an old one.
 */
export const DELIVERY_WINDOW = 32_768;

const CHUNK = 200;

/**
 * The packet ids and digests of the last committed MQTT messages, written in the same
 * transaction as their readings. A resent message (DUP) whose id and digest are here was
 * kept before its acknowledgement got out (a crash, a dropped connection): it is acknowledged
 * again and not stored twice. One row per packet id, so the table never holds more than
 * 65,535 rows.
 */
export class DeliveryLog {
  // By packet id (1..65535): digest and commit order (0: none). Arrays rather than a Map of
  // objects: one object per message that lives for thousands of messages was garbage for the
  // old generation's collector, under a flood.
  private readonly digests = new Int32Array(65_536);
  private readonly ords = new Float64Array(65_536);
  private ord = 0;
  private readonly insert: Map<number, BetterSqlite3.Statement>;

  constructor(private readonly db: BetterSqlite3.Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS deliveries (
      id     INTEGER PRIMARY KEY,
      digest INTEGER NOT NULL,
      ord    INTEGER NOT NULL
    ) STRICT`);
    this.insert = new Map();
    const top = db.prepare("SELECT max(ord) AS ord FROM deliveries").get() as { ord: number | null };
    this.ord = top.ord ?? 0;
    const rows = db.prepare("SELECT id, digest, ord FROM deliveries WHERE ord > ?").all(this.ord - DELIVERY_WINDOW) as {
      id: number;
      digest: number;
      ord: number;
    }[];
    for (const r of rows) this.set(r.id, r.digest, r.ord);
  }

  /** True when this resend was committed already (its id and digest among the last committed). */
  kept(id: number, digest: number): boolean {
    if (!isPacketId(id)) return false;
    const ord = this.ords[id]!;
    return ord > 0 && this.digests[id] === digest && ord > this.ord - DELIVERY_WINDOW;
  }

  /** The broker sent a new message under `id`: it had our acknowledgement of the old one. */
  released(id: number): void {
    if (isPacketId(id)) this.ords[id] = 0;
  }

  /** Inside the commit transaction: record these messages as kept. */
  persist(deliveries: readonly Delivery[]): void {
    let ord = this.ord;
    for (let i = 0; i < deliveries.length; i += CHUNK) {
      const part = deliveries.slice(i, i + CHUNK);
      const args: number[] = [];
      for (const d of part) args.push(d.id, d.digest, ++ord);
      this.statement(part.length).run(args);
    }
  }

  /** After the commit: the same in memory. */
  remember(deliveries: readonly Delivery[]): void {
    for (const d of deliveries) this.set(d.id, d.digest, ++this.ord);
  }

  private set(id: number, digest: number, ord: number): void {
    if (!isPacketId(id)) return; // never resent under it
    this.digests[id] = digest;
    this.ords[id] = ord;
  }

  private statement(n: number): BetterSqlite3.Statement {
    let s = this.insert.get(n);
    if (!s) {
      const values = Array.from({ length: n }, () => "(?,?,?)").join(",");
      s = this.db.prepare(`INSERT OR REPLACE INTO deliveries (id, digest, ord) VALUES ${values}`);
      this.insert.set(n, s);
    }
    return s;
  }
}

/** An MQTT packet identifier: 1..65535. */
function isPacketId(id: number): boolean {
  return Number.isInteger(id) && id >= 1 && id <= 65_535;
}

/** FNV-1a over the topic and the payload: cheap, and only ever compared under the same packet id. */
export function deliveryDigest(topic: string, payload: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) {
    h ^= topic.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  for (let i = 0; i < payload.length; i++) {
    h ^= payload[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}
