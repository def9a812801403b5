import { once } from "node:events";
import type { Writable } from "node:stream";
import { OutputError, type OutMessage, type Output } from "./types";

/**
 * Bytes to a writable stream (stdout, a serial port): waits for 'drain' when the stream's
 * buffer is full, so the producer never runs ahead of the line.
 */
export class StreamOutput implements Output {
  private failure: OutputError | undefined;

  constructor(
    private readonly stream: Writable,
    readonly description: string,
    private readonly closeStream: () => Promise<void> = async () => undefined,
  ) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      this.failure ??=
        err.code === "EPIPE"
          ? new OutputError(`${description} was closed by its reader`, "closed", { cause: err })
          : new OutputError(`${description}: ${err.message}`, "failed", { cause: err });
    });
  }

  send(m: OutMessage): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    if (this.stream.write(m.payload)) return undefined;
    return this.drained();
  }

  private async drained(): Promise<void> {
    // 'error' also ends the wait: once() rejects on it, and the failure is already recorded.
    await once(this.stream, "drain").catch(() => undefined);
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    // An empty write's callback runs once everything before it is flushed: the process may exit right after.
    if (!this.failure && !this.stream.writableEnded)
      await new Promise<void>((resolve) => this.stream.write(Buffer.alloc(0), () => resolve()));
    await this.closeStream();
    if (this.failure && this.failure.reason !== "closed") throw this.failure;
  }
}

export function stdoutOutput(): StreamOutput {
  return new StreamOutput(process.stdout, "stdout");
}
