import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, tempDir, waitFor } from "@datalab/shared/testing";
import { connect } from "node:net";

export interface Broker {
  url: string;
  kill(signal?: NodeJS.Signals): void;
  proc: ChildProcess;
}

/** Mosquitto on a free loopback port, queues unbounded (`max_queued_messages 0`), no persistence. */
export async function startMosquitto(): Promise<Broker> {
  const port = await freePort();
  const dir = tempDir("datalab-bench-mqtt-");
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "max_queued_messages 0", "max_inflight_messages 100", ""].join("\n"));
  const proc = spawn("mosquitto", ["-c", conf], { stdio: "ignore" });
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        if (proc.exitCode !== null) throw new Error(`mosquitto exited with ${proc.exitCode}`);
        const s = connect(port, "127.0.0.1");
        s.once("connect", () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
      }),
    `mosquitto on ${port}`,
  );
  return { url: `mqtt://127.0.0.1:${port}`, proc, kill: (sig = "SIGTERM") => proc.kill(sig) };
}
