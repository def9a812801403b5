import { closeSync, constants, existsSync, openSync, readSync, watch, type FSWatcher } from "node:fs";
import { dirname } from "node:path";

/**
 * Tells when something changes in the directory where a device node will appear (inotify
 * through fs.watch), so a radio is reopened the moment it is plugged back rather than at the
 * next poll. It watches the deepest directory of the path that exists: udev deletes
 * `/dev/serial/by-id` itself when the last USB serial device goes, and creates it again on
 * the next plug, so the watch climbs to `/dev/serial` (or `/dev`) and comes back down.
 */
export class DeviceWatch {
  #watcher: FSWatcher | undefined;
  #dir: string | undefined;

  constructor(
    readonly path: string,
    private readonly onEvent: () => void,
  ) {}

  /** True while a watch is set up. */
  get active(): boolean {
    return this.#watcher !== undefined;
  }

  /** Sets up (or moves) the watch; false when none can be (inotify limits): the caller polls then. */
  start(): boolean {
    const dir = deepestExisting(dirname(this.path));
    if (this.#watcher && dir === this.#dir) return true;
    this.stop();
    try {
      const w = watch(dir, { persistent: false });
      // A change, or the directory itself going away: move the watch, then let the caller look.
      w.on("change", () => this.#changed());
      w.on("error", () => this.#changed());
      this.#watcher = w;
      this.#dir = dir;
      return true;
    } catch {
      return false;
    }
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#dir = undefined;
  }

  #changed(): void {
    if (!this.#watcher) return;
    // Moved before the caller looks: whatever is created after this is seen by the new watch.
    if (!this.start()) this.stop();
    this.onEvent();
  }
}

function deepestExisting(dir: string): string {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

/** Bytes read from a device node before the port is opened, at most this many. */
const PENDING_MAX_BYTES = 1024 * 1024;

/**
 * What is waiting to be read on a device node, without blocking and without making it the
 * controlling terminal. serialport's open flushes the input queue (tcflush TCIOFLUSH) when it
 * sets the baud rate, so bytes a radio sent between its node appearing and the open would be
 * thrown away unseen; read first, they go through the codec like any other (and if they were
 * received with the wrong line settings, the codec quarantines them with its reason).
 */
export function readPending(path: string): Buffer[] {
  const chunks: Buffer[] = [];
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch {
    return chunks; // not openable now: the port's own open reports why
  }
  try {
    let total = 0;
    while (total < PENDING_MAX_BYTES) {
      const buf = Buffer.allocUnsafe(65_536);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
    }
  } catch {
    // EAGAIN: nothing more waiting (EIO: the other end is gone)
  } finally {
    closeSync(fd);
  }
  return chunks;
}
