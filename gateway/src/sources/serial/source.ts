import { existsSync } from "node:fs";
import type { SerialPort } from "serialport";
import { errorMessage, type Logger, ThrottledLog } from "@datalab/shared";
import {
  createParser,
  toCodecOutput,
  type MySensorsMessage,
  type MysNodeMetadata,
  type ParseResult,
  type ProtocolCodec,
  type UnitConfig,
  type XBeeCodecOptions,
} from "@datalab/sensors";
import type { Ingest } from "../../ingest/index";
import type { CodecMetrics } from "../../metrics/index";
import { CodecBridge, type FrameCounts } from "../common/codec-bridge";
import type { SerialPortSpec } from "./config";
import { MySensorsRole } from "./mysensors";
import { DeviceWatch, readPending } from "./device-watch";
import type { Source, SourceStatus } from "../common/types";

/**
 * serialport's native module is loaded when the first serial source starts, not when the
 * gateway does: most gateways read MQTT only, and a Pi's memory is better spent elsewhere.
 */
let serialport: typeof import("serialport") | undefined;

export interface SerialSourceOptions {
  spec: SerialPortSpec;
  /** Pin scaling for xbee/xbee2 ports. */
  xbee?: XBeeCodecOptions;
  /** For mysensors ports: where the controller keeps node ids, and the I_CONFIG answer. */
  mysensors?: { storagePath: string; unitSystem: "M" | "I" };
  /** Units the operator configured per metric, for readings whose frames state none. */
  units?: UnitConfig;
  metrics: CodecMetrics;
  logger: Logger;
  now?: () => number;
  /**
   * Retry interval for a device that is there but cannot be opened, or to look for an absent one
   * where its directory cannot be watched (default 1 s).
   */
  pollMs?: number;
  /** XBee API mode 1: release frames a stray 0x7E holds back after this much silence (default 200 ms). */
  idleFlushMs?: number;
}

export interface SerialSourceStatus extends SourceStatus {
  kind: "serial";
  path: string;
  protocol: string;
  baudRate: number;
  /** Times the port was opened since the gateway started (a replug makes it 2). */
  opens: number;
  openedAt: number | undefined;
  /**
   * Bytes that were waiting on the device node when the port was (re)opened: read before the
   * open, which would have flushed them, and decoded like the rest.
   */
  readBeforeOpen: number;
  /**
   * Milliseconds the device node was there while the port was not open (between appearing and
   * opening, failed opens).
   */
  unreadMs: number;
  frames: FrameCounts;
  /** MySensors ports: the nodes the controller knows, with what they presented. */
  mysensors?: { nodes: MysNodeMetadata[]; problem?: string | undefined };
}

/**
 * One radio on a serial port: opens it when the device appears, reads frames through the
 * protocol's codec, writes the controller's replies back (MySensors), and reopens it after the
 * device is unplugged and plugged back. Nothing here throws into the gateway: a missing or
 * failing port is a status and a (rate-limited) log line.
 *
 * While the device is absent, its directory is watched (DeviceWatch): the port is opened as
 * soon as the node appears, and what the radio sent meanwhile is read before the open.
 */
export class SerialSource implements Source {
  readonly name: string;
  readonly #spec: SerialPortSpec;
  readonly #codec: ProtocolCodec<unknown>;
  readonly #bridge: CodecBridge;
  readonly #mysensors: MySensorsRole | undefined;
  readonly #log: ThrottledLog;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #pollMs: number;
  readonly #idleFlushMs: number | undefined;
  #port: SerialPort | undefined;
  #state: SourceStatus["state"] = "starting";
  #lastError: string | undefined;
  #opens = 0;
  #openedAt: number | undefined;
  #stopped = true;
  #retryTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #lastDataAt = 0;
  #watch: DeviceWatch | undefined;
  #opening = false;
  /** When the device node was first seen present since the port was last open. */
  #presentSince: number | undefined;
  #readBeforeOpen = 0;
  #unreadMs = 0;

  constructor(opts: SerialSourceOptions, ingest: Ingest) {
    const { spec } = opts;
    this.#spec = spec;
    this.name = `serial:${spec.path}:${spec.protocol}`;
    this.#logger = opts.logger.child({ source: this.name });
    this.#log = new ThrottledLog(this.#logger, 60_000, opts.now);
    this.#now = opts.now ?? Date.now;
    this.#pollMs = opts.pollMs ?? 1_000;
    // Only binary framing needs the idle flush: a text line is complete at its newline, and
    // flushing a slow line early would cut it.
    this.#idleFlushMs = spec.protocol === "xbee" || spec.protocol === "xbee2" ? (opts.idleFlushMs ?? 200) : undefined;
    if (spec.protocol === "mysensors") {
      const m = opts.mysensors ?? { storagePath: ":memory:", unitSystem: "M" };
      const role = new MySensorsRole({ ...m, logger: this.#logger, ...(opts.now ? { now: opts.now } : {}) });
      this.#mysensors = role;
      this.#codec = createParser("mysensors", {
        unitSystem: m.unitSystem,
        sensorTypeOf: (n, c) => role.sensorTypeOf(n, c),
        ...(opts.units ? { units: opts.units } : {}),
      }) as ProtocolCodec<unknown>;
    } else if (spec.protocol === "xbee" || spec.protocol === "xbee2") {
      this.#codec = createParser(spec.protocol, {
        ...opts.xbee,
        ...(opts.units ? { units: opts.units } : {}),
      }) as ProtocolCodec<unknown>;
    } else {
      this.#codec = createParser(spec.protocol, opts.units ? { units: opts.units } : {}) as ProtocolCodec<unknown>;
    }
    this.#bridge = new CodecBridge(ingest, this.name, spec.protocol, opts.metrics);
  }

  /** Resolves at once: a radio that is not plugged in must not hold the gateway's start. */
  async start(): Promise<void> {
    this.#stopped = false;
    try {
      serialport ??= await import("serialport");
    } catch (err) {
      // A broken native build must not take the MQTT path down with it: report and stay idle.
      this.#state = "disconnected";
      this.#lastError = `serialport cannot be loaded: ${errorMessage(err)}`;
      this.#log.error("load", { err: errorMessage(err) }, "serial support unavailable; this port stays closed");
      return;
    }
    this.#mysensors?.open();
    this.#attempt();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watch?.stop();
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#idleTimer);
    const port = this.#port;
    if (port?.isOpen) {
      await new Promise<void>((resolve) => port.close(() => resolve()));
    }
    this.#port = undefined;
    this.#drain("the gateway stopped");
    this.#state = "stopped";
    this.#mysensors?.close();
  }

  status(): SerialSourceStatus {
    return {
      name: this.name,
      state: this.#state,
      lastError: this.#lastError ?? this.#mysensors?.problem,
      kind: "serial",
      path: this.#spec.path,
      protocol: this.#spec.protocol,
      baudRate: this.#spec.baudRate,
      opens: this.#opens,
      openedAt: this.#openedAt,
      readBeforeOpen: this.#readBeforeOpen,
      unreadMs: this.#unreadMs + (this.#presentSince === undefined ? 0 : this.#now() - this.#presentSince),
      frames: { ...this.#bridge.counts, rejectedBy: { ...this.#bridge.counts.rejectedBy } },
      ...(this.#mysensors ? { mysensors: { nodes: this.#mysensors.nodes(), problem: this.#mysensors.problem } } : {}),
    };
  }

  #retryLater(): void {
    if (this.#stopped) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#attempt(), this.#pollMs);
    this.#retryTimer.unref();
  }

  /** Watches for the device node; polls only where no watch can be set up. */
  #waitForDevice(): void {
    this.#watch ??= new DeviceWatch(this.#spec.path, () => this.#deviceEvent());
    if (!this.#watch.start()) {
      this.#log.warn(
        "watch",
        { path: this.#spec.path },
        "cannot watch for the serial device (inotify limits?); looking for it every pollMs instead",
      );
      this.#retryLater();
      return;
    }
    // It may have appeared while the watch was being set up.
    if (existsSync(this.#spec.path)) this.#deviceEvent();
  }

  #deviceEvent(): void {
    if (this.#stopped || this.#opening) return;
    if (this.#port) {
      // The node is gone while the port is open: serialport can miss a hangup (a pty's other
      // end closing between two polls), and the port would stay open and dead.
      if (!existsSync(this.#spec.path) && this.#port.isOpen) this.#port.close();
      return;
    }
    if (!existsSync(this.#spec.path)) {
      if (!this.#watch?.active) this.#retryLater();
      return;
    }
    this.#watch?.stop();
    this.#attempt();
  }

  /** `after`: what happened before, kept in the status while the device is awaited. */
  #attempt(after?: string): void {
    if (this.#stopped || this.#port || this.#opening) return;
    clearTimeout(this.#retryTimer);
    const path = this.#spec.path;
    if (!existsSync(path)) {
      this.#state = "disconnected";
      this.#lastError = `${after ? `${after}; ` : ""}waiting for ${path} to appear (not plugged in?)`;
      this.#log.warn("absent", { path }, "serial device not present; waiting for it to appear");
      if (this.#presentSince !== undefined) this.#unreadMs += this.#now() - this.#presentSince;
      this.#presentSince = undefined;
      this.#waitForDevice();
      return;
    }
    this.#presentSince ??= this.#now();
    // Whatever was half-read before an unplug belongs to the old connection (already reported);
    // then what the radio sent since its node appeared, which the open would flush.
    this.#codec.parser.reset();
    const pending = readPending(path);
    for (const chunk of pending) {
      this.#readBeforeOpen += chunk.length;
      this.#onData(chunk);
    }
    if (pending.length > 0)
      this.#logger.info(
        { bytes: pending.reduce((a, c) => a + c.length, 0) },
        "read what the radio sent before the port was opened",
      );
    let port: SerialPort;
    try {
      port = new serialport!.SerialPort({ path, baudRate: this.#spec.baudRate, autoOpen: false });
    } catch (err) {
      this.#state = "disconnected";
      this.#lastError = `cannot use ${path}: ${errorMessage(err)}`;
      this.#log.error("open", { err: errorMessage(err), path }, "serial port settings refused");
      this.#retryLater();
      return;
    }
    // Listeners before open: an 'error' event without a listener would throw.
    port.on("error", (err) => {
      this.#lastError = err.message;
      this.#log.warn("error", { err: err.message }, "serial port error");
    });
    this.#opening = true;
    port.open((err) => {
      this.#opening = false;
      if (err) {
        this.#state = "disconnected";
        this.#lastError = `cannot open ${path}: ${err.message}`;
        this.#log.warn("open", { err: err.message, path }, "serial port cannot be opened; retrying every second");
        this.#retryLater();
        return;
      }
      if (this.#stopped) {
        port.close();
        return;
      }
      this.#port = port;
      this.#opens += 1;
      this.#openedAt = this.#now();
      if (this.#presentSince !== undefined) this.#unreadMs += this.#openedAt - this.#presentSince;
      this.#presentSince = undefined;
      this.#state = "connected";
      this.#lastError = undefined;
      for (const key of ["absent", "open", "closed"]) this.#log.reset(key);
      this.#logger.info(
        { path, baudRate: this.#spec.baudRate, protocol: this.#spec.protocol, opens: this.#opens },
        "serial port open",
      );
      port.on("data", (chunk: Buffer) => this.#onData(chunk));
      port.once("close", (closeErr: Error | null) => this.#onClosed(port, closeErr));
      // Watched while open too: the node going away is an unplug, whatever the port reports.
      this.#watch ??= new DeviceWatch(path, () => this.#deviceEvent());
      this.#watch.start();
    });
  }

  #onData(chunk: Buffer): void {
    const receivedAt = this.#now();
    this.#lastDataAt = receivedAt;
    try {
      for (const r of this.#codec.parser.push(chunk)) this.#process(r, receivedAt);
    } catch (err) {
      // Codecs and ingest do not throw on bad input; this would be a bug. Keep reading.
      this.#log.error("bug", { err: errorMessage(err) }, "serial frame handling failed");
    }
    if (this.#idleFlushMs !== undefined && this.#codec.parser.bufferedBytes > 0 && this.#idleTimer === undefined)
      this.#armIdleFlush(this.#idleFlushMs);
  }

  /** One timer, re-armed for the remaining time, rather than a new timer per chunk. */
  #armIdleFlush(ms: number): void {
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#codec.parser.bufferedBytes === 0 || this.#idleFlushMs === undefined) return;
      const idle = this.#now() - this.#lastDataAt;
      if (idle < this.#idleFlushMs) {
        this.#armIdleFlush(this.#idleFlushMs - idle);
        return;
      }
      for (const r of this.#codec.parser.flush()) this.#process(r, this.#now());
    }, ms);
    this.#idleTimer.unref();
  }

  #process(r: ParseResult<unknown>, receivedAt: number): void {
    if (r.kind === "frame" && this.#mysensors) {
      // The controller sees the message before it is decoded: a presentation earlier in the
      // same chunk must already refine the readings after it.
      for (const line of this.#mysensors.handle(r.frame as MySensorsMessage)) this.#write(line);
    }
    this.#bridge.handle(toCodecOutput(r, this.#codec.decode), receivedAt);
  }

  #write(line: string): void {
    const port = this.#port;
    if (!port?.isOpen) {
      this.#log.warn("write", { line: line.trim() }, "reply not sent: the port is closed (the node will ask again)");
      return;
    }
    port.write(line, (err) => {
      if (err) this.#log.warn("write", { err: err.message, line: line.trim() }, "reply not sent");
    });
  }

  #onClosed(port: SerialPort, err: Error | null): void {
    if (this.#port === port) this.#port = undefined;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#drain("the port closed");
    if (this.#stopped) return;
    this.#state = "disconnected";
    const closed = `port closed${err ? `: ${err.message}` : ""} (unplugged?)`;
    this.#lastError = `${closed}; waiting for it to come back`;
    this.#log.warn(
      "closed",
      { err: err?.message, path: this.#spec.path },
      "serial port closed; will reopen when the device is back",
    );
    // Gone: watch for it. Still there (udev has not removed it yet): the open fails and retries.
    this.#attempt(closed);
  }

  /**
   * A frame cut off by an unplug or a stop is reported, not dropped: the codecs turn a partial
   * line or frame into `truncated_frame` (a JSON line is parsed, and fails if it is cut).
   */
  #drain(why: string): void {
    if (this.#codec.parser.bufferedBytes === 0) return;
    this.#logger.debug({ bytes: this.#codec.parser.bufferedBytes }, `partial frame when ${why}`);
    for (const r of this.#codec.parser.flush()) this.#bridge.handle(toCodecOutput(r, this.#codec.decode));
  }
}
