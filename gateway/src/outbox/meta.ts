import { randomBytes } from "node:crypto";
import type Database from "better-sqlite3";
import type { BatchRange } from "./types";

/**
 * The `meta` table (keys in schema.ts): the instance id and message-id key, made once, the
 * next seq, and the batch in flight.
 */
export class Meta {
  readonly instance: string;
  /** Secret key of the batches' message-id digests: never leaves the outbox. */
  readonly msgIdKey: Buffer;
  /** The next seq as stored (NaN when the stored value is not a number: see recover.ts). */
  readonly storedNextSeq: number;
  /** The batch in flight as stored at open. */
  readonly storedInflight: BatchRange | undefined;
  private readonly stmts;

  constructor(db: Database.Database) {
    const get = db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?");
    const add = db.prepare<[string, string]>("INSERT INTO meta (key, value) VALUES (?, ?)");
    // One transaction: a crash cannot leave an instance without its first seq.
    const made = db.transaction(() => {
      let instance = get.get("instance")?.value;
      if (!instance) {
        instance = randomBytes(6).toString("hex");
        add.run("instance", instance);
        add.run("next_seq", "1");
      }
      // Outboxes made before message ids carried a digest get their key at their next start.
      let key = get.get("msg_id_key")?.value;
      if (!key) {
        key = randomBytes(32).toString("hex");
        add.run("msg_id_key", key);
      }
      return { instance, key };
    })();
    this.instance = made.instance;
    this.msgIdKey = Buffer.from(made.key, "hex");
    this.storedNextSeq = Number(get.get("next_seq")?.value ?? "1");
    const inflight = get.get("inflight")?.value;
    this.storedInflight = inflight ? (JSON.parse(inflight) as BatchRange) : undefined;
    this.stmts = {
      setSeq: db.prepare("UPDATE meta SET value = ? WHERE key = 'next_seq'"),
      setInflight: db.prepare(
        "INSERT INTO meta (key, value) VALUES ('inflight', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ),
      clearInflight: db.prepare("DELETE FROM meta WHERE key = 'inflight'"),
    };
  }

  setNextSeq(seq: number): void {
    this.stmts.setSeq.run(String(seq));
  }

  setInflight(r: BatchRange): void {
    this.stmts.setInflight.run(JSON.stringify(r));
  }

  clearInflight(): void {
    this.stmts.clearInflight.run();
  }
}
