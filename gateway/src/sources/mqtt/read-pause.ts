/**
 * At low rates each MQTT message is a wake-up of its own (a read, a parse), and those
 * wake-ups, not the messages, are what the CPU goes to. So while the rate is a trickle (fewer
 * than TRICKLE_PER_PAUSE messages per `pauseMs` over the last window), the socket stops
 * reading for `pauseMs` after each read, and the next read takes what gathered meanwhile, in
 * one wake-up. Messages wait in the kernel and at the broker. The price is latency, at most
 * `pauseMs`, and a burst that starts during a pause waits at the broker for that long (within
 * `max_queued_messages`). A read that brings TRICKLE_PER_PAUSE messages or more ends the
 * pausing at once, and above that rate reads never pause, so a flood is not slowed.
 *
 * Stopping the reads themselves needs the socket's handle, which Node keeps private
 * (`_handle`): that reach is confined to pauseReading and resumeReading below.
 */

/** The message rate that decides whether reads pause is measured over windows this long. */
const RATE_WINDOW_MS = 1_000;

/**
 * Reads pause while fewer than this many messages arrive per pause, on average over the last
 * window, and a read that brings this many ends the pausing. While reads pause, the source
 * can still take in the broker's whole in-flight window per pause (Mosquitto's default is 20
 * QoS 1 messages, more than this), so a rising rate shows: a backlog brings full reads.
 */
export const TRICKLE_PER_PAUSE = 15;

/** The part of a net.Socket the read pause uses. */
export interface PausableStream {
  pause(): void;
  resume(): void;
  on(event: "data", listener: () => void): unknown;
  destroyed?: boolean;
}

export interface ReadPauseOptions {
  pauseMs: number;
  /** A monotonic clock in milliseconds (default performance.now). */
  now?: () => number;
}

/** The read pause of one connection's socket. */
export class ReadPause {
  #scheduled = false;
  /** Messages handed on since the last chunk was handled. */
  #inChunk = 0;
  #windowStart: number;
  #windowCount = 0;
  #trickle = false;
  #timer: NodeJS.Timeout | undefined;
  #resume: (() => void) | undefined;
  readonly #now: () => number;

  constructor(
    private readonly stream: PausableStream,
    private readonly opts: ReadPauseOptions,
  ) {
    this.#now = opts.now ?? (() => performance.now());
    this.#windowStart = this.#now();
    // setImmediate runs after the nextTick chain mqtt.js works through a chunk with.
    stream.on("data", () => {
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => this.#afterChunk());
    });
  }

  /** One message was handed on. */
  count(): void {
    this.#inChunk++;
  }

  /** True while the socket's reads are paused. */
  get paused(): boolean {
    return this.#timer !== undefined;
  }

  /** Ends a pause at once (a stop needs the socket reading to see it close). */
  resumeNow(): void {
    this.#resume?.();
  }

  #afterChunk(): void {
    this.#scheduled = false;
    // mqtt.js may hand a chunk's messages on after this runs: they are counted here, not per
    // 'data' event.
    const read = this.#inChunk;
    this.#inChunk = 0;
    this.#windowCount += read;
    const now = this.#now();
    if (read >= TRICKLE_PER_PAUSE) {
      // One read brought a pause's worth or more: not a trickle, whatever the window says.
      this.#trickle = false;
      this.#windowStart = now;
      this.#windowCount = 0;
    } else if (now - this.#windowStart >= RATE_WINDOW_MS) {
      this.#trickle = this.#windowCount * this.opts.pauseMs < TRICKLE_PER_PAUSE * (now - this.#windowStart);
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (this.#trickle && this.#timer === undefined) {
      const stopped = pauseReading(this.stream);
      this.#resume = () => {
        clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#resume = undefined;
        resumeReading(this.stream, stopped);
      };
      this.#timer = setTimeout(this.#resume, this.opts.pauseMs);
    }
  }
}

type SocketHandle = { reading?: boolean; readStop?: () => number; readStart?: () => number };

/**
 * Pause a socket so that the kernel keeps what arrives: `pause()` alone stops the 'data'
 * events but not the reads, so each packet would still wake the process. This stops the
 * handle's reads as Node's own socket does when it runs with a fixed read buffer; true when
 * it did, and then only resumeReading starts them again.
 */
export function pauseReading(socket: { pause(): void }): boolean {
  socket.pause();
  const handle = (socket as { _handle?: SocketHandle | null })._handle;
  if (!handle?.reading || typeof handle.readStop !== "function" || typeof handle.readStart !== "function") return false;
  // Marked as not reading only once it has stopped: otherwise nothing would start it again.
  if (handle.readStop() !== 0) return false;
  handle.reading = false;
  return true;
}

export function resumeReading(socket: { resume(): void; destroyed?: boolean }, stopped: boolean): void {
  const handle = (socket as { _handle?: SocketHandle | null })._handle;
  if (stopped && handle && !handle.reading && !socket.destroyed) {
    handle.reading = true;
    handle.readStart!();
  }
  socket.resume();
}
