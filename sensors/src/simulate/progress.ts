/**
 * A progress line on stderr for long runs: count, rate, and an ETA when the end is known, at
 * most once per `everyMs`. On a terminal the line is rewritten in place; in a log each update
 * is its own line.
 */
export class ProgressLine {
  private last: number;
  private printed = false;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly everyMs = 1_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    // The first line comes after `everyMs`: a run shorter than that prints none.
    this.last = now();
  }

  /** `fraction` of the work done (0..1) when known, for the ETA. */
  update(what: string, count: number, elapsedMs: number, fraction?: number): void {
    const t = this.now();
    if (t - this.last < this.everyMs) return;
    this.last = t;
    const rate = elapsedMs > 0 ? (count * 1000) / elapsedMs : 0;
    let text = `${what}: ${count.toLocaleString("en-US")}, ${Math.round(rate).toLocaleString("en-US")}/s`;
    if (fraction !== undefined && fraction > 0 && fraction <= 1) {
      text += `, ${(fraction * 100).toFixed(0)} %, ETA ${duration((elapsedMs * (1 - fraction)) / fraction)}`;
    }
    if (this.out.isTTY) this.out.write(`\r${text}\u001b[K`);
    else this.out.write(`${text}\n`);
    this.printed = true;
  }

  /** Ends an in-place line so the next output starts on a fresh one. */
  done(): void {
    if (this.printed && this.out.isTTY) this.out.write("\n");
  }
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0
    ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`
    : `${m}:${String(sec).padStart(2, "0")}`;
}

/**
 * Run `job` against an output and close the output after it, whatever happens: a failed run
 * still flushes and closes (its own close error then yields to the run's), and the progress
 * line is ended either way.
 */
export async function runClosing<T>(
  output: { close(): Promise<void> },
  progress: ProgressLine,
  job: () => Promise<T>,
): Promise<T> {
  let result: T;
  try {
    result = await job();
  } catch (err) {
    progress.done();
    await output.close().catch(() => undefined);
    throw err;
  }
  progress.done();
  await output.close();
  return result;
}
