import { join } from "node:path";
import { freePort, onFreePort, tempDir, uniqueId, waitFor } from "@datalab/shared/testing";
import { ROOT, startNode, startProcess, type Child } from "../lib/proc";

/** V8 flags the Pi's unit runs the gateway with: a small young generation keeps RSS low. */
export const GATEWAY_NODE_FLAGS = (
  process.env.DATALAB_BENCH_NODE_FLAGS ?? "--max-semi-space-size=1 --max-old-space-size=64"
)
  .split(" ")
  .filter(Boolean);

/** Extra node flags for the hub, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile it. */
const HUB_NODE_FLAGS = (process.env.DATALAB_BENCH_HUB_FLAGS ?? "").split(" ").filter(Boolean);

/** The Node.js binary the hub's bundle runs on (its image's Node.js), by default the bench's own. */
const HUB_NODE = process.env.DATALAB_BENCH_HUB_NODE || process.execPath;

export interface Figure {
  stage: string;
  figure: string;
  value: number;
  unit: string;
  limit?: { what: string; value: number; unit: string };
  /** Target, as text ("≥ 0.8× limit", "≤ 60 MB") and whether it was met. */
  target?: string;
  met?: boolean;
  note?: string;
}

export interface BenchContext {
  quick: boolean;
  mqttUrl: string;
  natsUrl: string;
  pgUrl: string;
  log: (msg: string) => void;
}

export interface GatewayChild extends Child {
  httpPort: number;
  dataDir: string;
}

/** A gateway as its own process, as on a Pi. An unreachable NATS URL leaves it buffering. */
export async function startGateway(
  env: Record<string, string>,
  dataDir = tempDir("datalab-bench-gw-"),
): Promise<GatewayChild> {
  // Started again on a fresh port if another process took this one before the gateway bound it.
  return onFreePort((port) => launchGateway(env, dataDir, port));
}

async function launchGateway(env: Record<string, string>, dataDir: string, httpPort: number): Promise<GatewayChild> {
  // As on a Pi: the bundled gateway under plain node (see gateway/scripts/bundle.ts), unless
  // DATALAB_BENCH_GATEWAY=tsx asks for the development path, or names an unpacked release
  // folder (deploy/release.ts), whose own Node.js then runs its bundle.
  const how = process.env.DATALAB_BENCH_GATEWAY ?? "";
  const start =
    how === "tsx"
      ? (e: NodeJS.ProcessEnv) => startNode("gateway/src/cli.ts", ["run"], e)
      : how
        ? (e: NodeJS.ProcessEnv) =>
            startProcess(join(how, "bin/node"), [...GATEWAY_NODE_FLAGS, join(how, "dist/cli.mjs"), "run"], e)
        : (e: NodeJS.ProcessEnv) =>
            startProcess(process.execPath, [...GATEWAY_NODE_FLAGS, `${ROOT}gateway/dist/cli.mjs`, "run"], e);
  const child = start({
    ...process.env,
    DATALAB_LOG_LEVEL: "warn",
    DATALAB_HTTP_PORT: String(httpPort),
    DATALAB_HTTP_HOST: "127.0.0.1",
    DATALAB_DATA_DIR: dataDir,
    DATALAB_GATEWAY_ID: uniqueId("bench"),
    ...env,
  });
  await untilAnswering(
    child,
    `the gateway on port ${httpPort}`,
    async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status < 500,
  );
  // A flood that starts before the broker confirmed the subscription loses its first messages
  // (a new session has nothing queued): wait for it, as a publisher to a fresh gateway must.
  if (env.DATALAB_MQTT_TOPICS) {
    await untilAnswering(child, "the gateway's MQTT subscription", async () => {
      const s = (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as {
        sources?: { name: string; subscribed?: boolean }[];
      };
      return s.sources?.some((x) => x.name === "mqtt" && x.subscribed === true) ?? false;
    });
  }
  return { ...child, httpPort, dataDir };
}

export interface HubChild extends Child {
  httpPort: number;
}

export async function startHub(env: Record<string, string>): Promise<HubChild> {
  return onFreePort((port) => launchHub(env, port));
}

async function launchHub(env: Record<string, string>, httpPort: number): Promise<HubChild> {
  const e = {
    ...process.env,
    DATALAB_LOG_LEVEL: "warn",
    DATALAB_HTTP_PORT: String(httpPort),
    DATALAB_HTTP_HOST: "127.0.0.1",
    ...env,
  };
  // As its image runs it (deploy/docker/hub.Dockerfile): the bundle under plain node, unless
  // DATALAB_BENCH_HUB=tsx asks for the development path.
  const child =
    process.env.DATALAB_BENCH_HUB === "tsx"
      ? startNode("hub/src/cli.ts", ["run"], e, HUB_NODE_FLAGS)
      : startProcess(HUB_NODE, ["--enable-source-maps", ...HUB_NODE_FLAGS, `${ROOT}hub/dist/cli.mjs`, "run"], e);
  await untilAnswering(
    child,
    `the hub on port ${httpPort}`,
    async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok,
  );
  return { ...child, httpPort };
}

/**
 * Wait until a child answers; a child that exits first fails the wait at once, with the end
 * of its stderr (a crash at start would otherwise wait out the whole deadline), and one that
 * never answers is stopped.
 */
async function untilAnswering(child: Child, what: string, answers: () => Promise<boolean>): Promise<void> {
  let exit: string | undefined;
  const onExit = (code: number | null, signal: string | null) => (exit = `exited (code ${code}, signal ${signal})`);
  if (child.proc.exitCode !== null || child.proc.signalCode !== null)
    onExit(child.proc.exitCode, child.proc.signalCode);
  else child.proc.once("exit", onExit);
  try {
    await waitFor(async () => exit !== undefined || (await answers()), what, 60_000, 100);
    if (exit !== undefined) throw new Error(`${what} ${exit} before answering: ${child.stderrTail()}`);
  } catch (err) {
    await child.stop();
    throw exit !== undefined
      ? err
      : new Error(`${(err as Error).message}; its stderr: ${child.stderrTail()}`, { cause: err });
  } finally {
    child.proc.off("exit", onExit);
  }
}

/** A port nothing listens on: the gateway's uplink stays down and readings stay in the outbox. */
export async function closedNatsUrl(): Promise<string> {
  return `nats://127.0.0.1:${await freePort()}`;
}
