import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DirectDeadLetter } from "@datalab/hub";

/**
 * The in-process uplink's stand-in for the dead-letter stream: one JSON file per batch the
 * hub gave up on (reason, error, subject, the batch itself in base64), in a folder kept with
 * the demo's data. Bounded: past `max` files it refuses, so the batch stays in the gateway's
 * outbox instead of being dropped.
 */
export function fileDeadLetters(dir: string, max = 1_000): (d: DirectDeadLetter) => Promise<void> {
  mkdirSync(dir, { recursive: true });
  let count = readdirSync(dir).filter((f) => f.endsWith(".json")).length;
  return async (d) => {
    if (count >= max) throw new Error(`${dir} already holds ${max} dead letters; the batch stays in the outbox`);
    const name = `${Date.now()}-${d.reason}-${d.msgId.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 120)}.json`;
    const body = {
      sink: d.sink ?? null,
      reason: d.reason,
      error: d.error,
      subject: d.subject,
      msgId: d.msgId,
      at: new Date().toISOString(),
      data: Buffer.from(d.data).toString("base64"),
    };
    writeFileSync(join(dir, name), `${JSON.stringify(body, null, 2)}\n`, { flag: "wx" });
    count += 1;
  };
}
