import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@datalab/shared/testing";
import type { OutMessage, Output } from "../../src/index";

/** Real fixtures live in ../shared beside the repository (CI keeps them there too). */
export function fixturePath(path: string): string {
  return new URL(`../../../../shared/fixtures/${path}`, import.meta.url).pathname;
}

/** An output that keeps what it is sent: for tests of what a run produces, not of a transport. */
export class MemoryOutput implements Output {
  readonly description = "memory";
  readonly messages: OutMessage[] = [];
  closed = false;
  send(m: OutMessage): undefined {
    this.messages.push(m);
    return undefined;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  json(): Record<string, unknown>[] {
    return this.messages.map((m) => JSON.parse(m.payload.toString()) as Record<string, unknown>);
  }
}

export function writeTemp(name: string, text: string): string {
  const path = join(tempDir("datalab-replay-"), name);
  writeFileSync(path, text);
  return path;
}
