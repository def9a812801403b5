import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SerialPort } from "serialport";
import { tempDir, waitFor } from "@datalab/shared/testing";

/**
 * A real pseudo-terminal pair from socat, standing in for a radio on a USB serial port:
 * what is written to `a` is read from `b`. Fails with a clear message when socat is missing.
 */
export interface PtyPair {
  a: string;
  b: string;
  stop(): Promise<void>;
}

export async function startPtyPair(): Promise<PtyPair> {
  const dir = tempDir("datalab-pty-");
  const a = join(dir, "a");
  const b = join(dir, "b");
  const p: ChildProcess = spawn("socat", ["-d", "-d", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let failed: Error | undefined;
  p.on("error", (err) => (failed = new Error(`cannot start socat (apt-get install socat): ${err.message}`)));
  await waitFor(() => failed !== undefined || (existsSync(a) && existsSync(b)), "socat's pty links", 10_000);
  if (failed) throw failed;
  return {
    a,
    b,
    stop: async () => {
      if (p.exitCode !== null) return;
      const exited = new Promise((resolve) => p.once("exit", resolve));
      p.kill("SIGTERM");
      await exited;
    },
  };
}

/** Opens the reading end and collects every byte that arrives. */
export async function openReader(
  path: string,
): Promise<{ port: SerialPort; received: () => Buffer; close: () => Promise<void> }> {
  const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const chunks: Buffer[] = [];
  port.on("data", (d: Buffer) => chunks.push(d));
  return {
    port,
    received: () => Buffer.concat(chunks),
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
}

const cli = new URL("../../src/cli.ts", import.meta.url).pathname;

/**
 * Runs `pnpm sensors ...` as the scripts do (node + tsx on the CLI file) and keeps stdout as
 * bytes: the simulator's malformed payloads include bytes that are not UTF-8, which a string
 * decoded chunk by chunk would mangle differently from run to run.
 */
export function sensorsCli(...args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn("node", ["--import", "tsx", cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout!.on("data", (d: Buffer) => out.push(d));
    p.stderr!.on("data", (d: Buffer) => err.push(d));
    const t = setTimeout(() => p.kill("SIGKILL"), 30_000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
  });
}
