import type { LineProblem, SkipReason } from "./formats/problems";

/** How many line numbers per reason the summary keeps: enough to find them, bounded for huge files. */
const LINES_KEPT = 5;

/** What a replay did: rows read, published, and skipped by reason with their first line numbers. */
export class ReplaySummary {
  read = 0;
  published = 0;
  /** Values in the rows published: the readings the gateway should commit. */
  readings = 0;
  readonly skipped = new Map<SkipReason, { count: number; lines: number[] }>();
  elapsedMs = 0;
  /** True when stopped early (Ctrl-C, --limit). */
  stopped = false;

  skip(p: LineProblem): void {
    const s = this.skipped.get(p.reason) ?? { count: 0, lines: [] };
    s.count += 1;
    if (s.lines.length < LINES_KEPT) s.lines.push(p.line);
    this.skipped.set(p.reason, s);
  }

  get skippedTotal(): number {
    let n = 0;
    for (const s of this.skipped.values()) n += s.count;
    return n;
  }

  toJSON(): object {
    return {
      read: this.read,
      published: this.published,
      readings: this.readings,
      skipped: Object.fromEntries(this.skipped),
      elapsedMs: Math.round(this.elapsedMs),
      stopped: this.stopped,
    };
  }

  format(): string {
    const secs = this.elapsedMs / 1000;
    const rate = secs > 0 ? ` (${Math.round(this.published / secs).toLocaleString("en-US")}/s)` : "";
    const head =
      `replay ${this.stopped ? "stopped" : "done"}: ${this.read} rows read, ${this.published} published, ` +
      `${this.skippedTotal} skipped in ${secs.toFixed(1)} s${rate}`;
    const lines = [...this.skipped.entries()].map(([reason, s]) => {
      const more = s.count > s.lines.length ? ", …" : "";
      return `  skipped ${reason}: ${s.count} (line${s.lines.length > 1 ? "s" : ""} ${s.lines.join(", ")}${more})`;
    });
    return [head, ...lines].join("\n");
  }
}
