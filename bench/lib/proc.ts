import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

/** CPU seconds a process has used so far in user space and in the kernel, from /proc. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at the last ")".
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(f[11]) / CLK_TCK, system: Number(f[12]) / CLK_TCK };
}

/** Resident and peak resident memory (MB), from /proc. */
export function memoryMb(pid: number): { rss: number; peak: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  stderrTail(): string;
  stop(): Promise<void>;
}

/** Run one of the project's TypeScript entry points as its own Node process. */
export function startNode(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  nodeFlags: readonly string[] = [],
): Child {
  return startProcess(process.execPath, [...nodeFlags, "--import", "tsx", `${ROOT}${script}`, ...args], env);
}

export function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const proc = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
  let tail = "";
  proc.stderr?.on("data", (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4_000);
  });
  return {
    proc,
    pid: proc.pid!,
    stderrTail: () => tail,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const t = setTimeout(() => proc.kill("SIGKILL"), 15_000);
        proc.once("exit", () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill("SIGTERM");
      }),
  };
}

/** Fetch a Prometheus counter's value from a /metrics endpoint (0 when absent). */
export async function scrape(port: number, name: string): Promise<number> {
  return (await scrapeMany(port, [name]))[0]!;
}

/** Several counters from one fetch of /metrics: each scrape costs the measured process CPU. */
export async function scrapeMany(port: number, names: readonly string[]): Promise<number[]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sums = names.map(() => 0);
  for (const line of text.split("\n")) {
    names.forEach((name, i) => {
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
        sums[i]! += Number(line.slice(line.lastIndexOf(" ") + 1));
    });
  }
  return sums;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
}
