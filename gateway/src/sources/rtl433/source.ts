import { spawn, type ChildProcess } from "node:child_process";
import { basename } from "node:path";
import { errorMessage, type Logger, ThrottledLog } from "@datalab/shared";
import { createParser, type ProtocolCodec, type Rtl433DecodeOptions, type Rtl433Event } from "@datalab/sensors";
import type { Ingest } from "../../ingest/index";
import type { CodecMetrics } from "../../metrics/index";
import { CodecBridge, type FrameCounts } from "../common/codec-bridge";
import type { Source, SourceStatus } from "../common/types";

export interface Rtl433SourceOptions {
  /** argv, e.g. `["rtl_433", "-F", "json"]`; run without a shell. */
  command: readonly string[];
  metrics: CodecMetrics;
  logger: Logger;
  decode?: Rtl433DecodeOptions;
  now?: () => number;
  /** Restart delay after the process ends: doubles from min to max (defaults 1 s and 60 s). */
  restartMinMs?: number;
  restartMaxMs?: number;
  /** A run at least this long resets the delay to the minimum (default 30 s). */
  stableAfterMs?: number;
}

export interface Rtl433SourceStatus extends SourceStatus {
  kind: "rtl433";
  command: string[];
  pid: number | undefined;
  /** Processes started since the gateway started. */
  starts: number;
  lastExit: { code: number | null; signal: string | null; at: number } | undefined;
  /** The delay before the last restart (doubles while the process keeps dying young). */
  lastRestartDelayMs: number | undefined;
  /** Last lines rtl_433 wrote to stderr (why it stopped, usually: "No supported devices found"). */
  stderr: string[];
  frames: FrameCounts;
}

const STDERR_LINES = 20;
const STDERR_LINE_CHARS = 500;
const STOP_GRACE_MS = 3_000;

/**
 * rtl_433 as a child process (`rtl_433 -F json`): each stdout line is an event, decoded by the
 * same rtl_433 codec as events arriving over MQTT. When the process ends (dongle unplugged,
 * USB reset, crash) it is started again after a delay that doubles up to a minute, and its
 * exits are logged at most once a minute.
 */
export class Rtl433ProcessSource implements Source {
  readonly name: string;
  readonly #opts: Rtl433SourceOptions;
  readonly #codec: ProtocolCodec<Rtl433Event>;
  readonly #bridge: CodecBridge;
  readonly #log: ThrottledLog;
  readonly #logger: Logger;
  readonly #now: () => number;
  #child: ChildProcess | undefined;
  #state: SourceStatus["state"] = "starting";
  #lastError: string | undefined;
  #starts = 0;
  #startedAt = 0;
  #delay: number;
  #lastExit: Rtl433SourceStatus["lastExit"];
  #lastRestartDelayMs: number | undefined;
  #stderr: string[] = [];
  #stderrTail = "";
  #stopped = true;
  #timer: NodeJS.Timeout | undefined;
  #exited: Promise<void> | undefined;

  constructor(opts: Rtl433SourceOptions, ingest: Ingest) {
    if (opts.command.length === 0 || !opts.command[0]) throw new Error("rtl_433 source: empty command");
    this.#opts = opts;
    this.name = `rtl433:${basename(opts.command[0])}`;
    this.#logger = opts.logger.child({ source: this.name });
    this.#log = new ThrottledLog(this.#logger, 60_000, opts.now);
    this.#now = opts.now ?? Date.now;
    this.#delay = opts.restartMinMs ?? 1_000;
    this.#codec = createParser("rtl433", opts.decode ?? {});
    this.#bridge = new CodecBridge(ingest, this.name, "rtl433", opts.metrics);
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#spawn();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const killer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      child.kill("SIGTERM");
      await this.#exited;
      clearTimeout(killer);
    }
    this.#state = "stopped";
  }

  status(): Rtl433SourceStatus {
    return {
      name: this.name,
      state: this.#state,
      lastError: this.#lastError,
      kind: "rtl433",
      command: [...this.#opts.command],
      pid: this.#child?.pid,
      starts: this.#starts,
      lastExit: this.#lastExit,
      lastRestartDelayMs: this.#lastRestartDelayMs,
      stderr: [...this.#stderr],
      frames: { ...this.#bridge.counts, rejectedBy: { ...this.#bridge.counts.rejectedBy } },
    };
  }

  #spawn(): void {
    if (this.#stopped) return;
    const [cmd, ...args] = this.#opts.command as [string, ...string[]];
    this.#codec.parser.reset();
    this.#stderr = [];
    this.#stderrTail = "";
    this.#starts += 1;
    this.#startedAt = this.#now();
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      this.#ended(undefined, null, null, `cannot start ${cmd}: ${errorMessage(err)}`);
      return;
    }
    this.#child = child;
    this.#state = "connected";
    let ended = false;
    this.#exited = new Promise((resolve) => {
      const end = (code: number | null, signal: string | null, problem?: string) => {
        if (ended) return;
        ended = true;
        this.#ended(child, code, signal, problem);
        resolve();
      };
      child.once("error", (err: NodeJS.ErrnoException) =>
        end(
          null,
          null,
          err.code === "ENOENT"
            ? `${cmd} not found (install it: apt-get install rtl-433)`
            : `cannot run ${cmd}: ${err.message}`,
        ),
      );
      // 'close', not 'exit': stdout is read to its end before the process counts as gone.
      child.once("close", (code, signal) => end(code, signal));
    });
    child.stdout!.on("data", (chunk: Buffer) => this.#onData(chunk));
    child.stderr!.on("data", (chunk: Buffer) => this.#onStderr(chunk));
    this.#logger.info({ command: this.#opts.command, pid: child.pid, starts: this.#starts }, "rtl_433 started");
  }

  #onData(chunk: Buffer): void {
    const receivedAt = this.#now();
    try {
      for (const out of this.#codec.push(chunk)) this.#bridge.handle(out, receivedAt);
    } catch (err) {
      this.#log.error("bug", { err: errorMessage(err) }, "rtl_433 event handling failed");
    }
  }

  /** Keeps the last lines only (bounded), for the status and the exit log line. */
  #onStderr(chunk: Buffer): void {
    const text = this.#stderrTail + chunk.toString("utf8");
    const lines = text.split("\n");
    this.#stderrTail = (lines.pop() ?? "").slice(0, STDERR_LINE_CHARS);
    for (const line of lines) {
      const l = line.trimEnd().slice(0, STDERR_LINE_CHARS);
      if (l === "") continue;
      this.#stderr.push(l);
      if (this.#stderr.length > STDERR_LINES) this.#stderr.shift();
      this.#logger.debug({ line: l }, "rtl_433 stderr");
    }
  }

  #ended(child: ChildProcess | undefined, code: number | null, signal: string | null, problem?: string): void {
    if (child && this.#child === child) this.#child = undefined;
    // A last event without its newline is still an event (JSON ends itself).
    for (const out of this.#codec.flush()) this.#bridge.handle(out);
    this.#lastExit = { code, signal, at: this.#now() };
    if (this.#stopped) return;
    const ranMs = this.#now() - this.#startedAt;
    if (ranMs >= (this.#opts.stableAfterMs ?? 30_000)) this.#delay = this.#opts.restartMinMs ?? 1_000;
    const delay = this.#delay;
    this.#lastRestartDelayMs = delay;
    this.#delay = Math.min(delay * 2, this.#opts.restartMaxMs ?? 60_000);
    const lastWords = this.#stderr.slice(-3).join(" | ");
    this.#state = "disconnected";
    this.#lastError =
      problem ??
      `rtl_433 exited (code ${code}${signal ? `, signal ${signal}` : ""})${lastWords ? `: ${lastWords}` : ""}`;
    this.#log.warn(
      "exit",
      { code, signal, ranMs, restartInMs: delay, stderr: lastWords || undefined },
      `${this.#lastError}; restarting`,
    );
    this.#timer = setTimeout(() => this.#spawn(), delay);
    this.#timer.unref();
  }
}
