/**
 * A pseudo-terminal pair standing in for a radio on a USB serial port: socat links two ptys,
 * the gateway opens one link as its "radio" and the test plays the node on the other.
 * Killing socat is the unplug (both links go away); starting it again with the same link
 * names is the replug.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SerialPort } from "serialport";
import { waitFor } from "@datalab/shared/testing";

export function requireSocat(): void {
  const r = spawnSync("sh", ["-c", "command -v socat"], { encoding: "utf8" });
  if (!r.stdout.trim())
    throw new Error("socat is not installed: apt-get install -y socat (the serial tests use pty pairs)");
}

export class PtyPair {
  readonly radio: string;
  readonly node: string;
  #proc: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #log = "";

  constructor(dir: string, name: string) {
    this.radio = join(dir, `${name}-radio`);
    this.node = join(dir, `${name}-node`);
  }

  async plug(): Promise<void> {
    requireSocat();
    const proc = spawn("socat", ["-d", "-d", `pty,raw,echo=0,link=${this.radio}`, `pty,raw,echo=0,link=${this.node}`], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.#proc = proc;
    // Bounded: only kept to explain a failure to start.
    proc.stderr!.on("data", (d: Buffer) => (this.#log = (this.#log + d.toString()).slice(-4_000)));
    this.#exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    await waitFor(() => {
      if (proc.exitCode !== null) throw new Error(`socat exited: ${this.#log}`);
      return existsSync(this.radio) && existsSync(this.node);
    }, `socat to create ${this.radio}`);
  }

  /** SIGTERM: socat closes both ptys and removes its links, as udev does on unplug. */
  async unplug(): Promise<void> {
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    await this.#exited;
    await waitFor(() => !existsSync(this.radio), `${this.radio} to disappear`);
  }
}

/** The node's end of the pair, opened like any serial port; collects what the gateway writes back. */
export class NodeEnd {
  received = Buffer.alloc(0);
  private constructor(readonly port: SerialPort) {}

  static async open(path: string): Promise<NodeEnd> {
    const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    const end = new NodeEnd(port);
    port.on("data", (d: Buffer) => {
      end.received = Buffer.concat([end.received, d]).subarray(-65_536);
    });
    port.on("error", () => undefined); // the other side going away is part of the tests
    return end;
  }

  async write(data: Buffer | string): Promise<void> {
    await new Promise<void>((resolve, reject) => this.port.write(data, (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => this.port.drain((err) => (err ? reject(err) : resolve())));
  }

  lines(): string[] {
    return this.received.toString("utf8").split("\n").filter(Boolean);
  }

  async close(): Promise<void> {
    if (!this.port.isOpen) return;
    await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }
}
