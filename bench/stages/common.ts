import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { subjects } from "@datalab/shared";
import { freePort, tempDir, uniqueId, waitFor } from "@datalab/shared/testing";
import { ROOT, startNode, startProcess, type Child } from "../lib/proc";

/** V8 flags the Pi's unit runs the gateway with: a small young generation keeps RSS low. */
export const GATEWAY_NODE_FLAGS = (process.env.DATALAB_BENCH_NODE_FLAGS ?? "--max-semi-space-size=1 --max-old-space-size=64").split(" ").filter(Boolean);

/** Extra node flags for the hub, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile it. */
const HUB_NODE_FLAGS = (process.env.DATALAB_BENCH_HUB_FLAGS ?? "").split(" ").filter(Boolean);

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
export async function startGateway(env: Record<string, string>, dataDir = tempDir("datalab-bench-gw-")): Promise<GatewayChild> {
  const httpPort = await freePort();
  // As on a Pi: the bundled gateway under plain node (see gateway/scripts/bundle.ts), unless
  // DATALAB_BENCH_GATEWAY=tsx asks for the development path.
  const viaTsx = process.env.DATALAB_BENCH_GATEWAY === "tsx";
  const start = viaTsx
    ? (e: NodeJS.ProcessEnv) => startNode("gateway/src/cli.ts", ["run"], e)
    : (e: NodeJS.ProcessEnv) => startProcess(process.execPath, [...GATEWAY_NODE_FLAGS, `${ROOT}gateway/dist/cli.mjs`, "run"], e);
  const child = start({
    ...process.env,
    DATALAB_LOG_LEVEL: "warn",
    DATALAB_HTTP_PORT: String(httpPort),
    DATALAB_HTTP_HOST: "127.0.0.1",
    DATALAB_DATA_DIR: dataDir,
    DATALAB_GATEWAY_ID: uniqueId("bench"),
    ...env,
  });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status < 500, `the gateway on port ${httpPort} (${child.stderrTail()})`, 60_000, 100);
  return { ...child, httpPort, dataDir };
}

export interface HubChild extends Child {
  httpPort: number;
}

export async function startHub(env: Record<string, string>): Promise<HubChild> {
  const httpPort = await freePort();
  const child = startNode("hub/src/cli.ts", ["run"], {
    ...process.env,
    DATALAB_LOG_LEVEL: "warn",
    DATALAB_HTTP_PORT: String(httpPort),
    DATALAB_HTTP_HOST: "127.0.0.1",
    ...env,
  }, HUB_NODE_FLAGS);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok, `the hub on port ${httpPort} (${child.stderrTail()})`, 60_000, 100);
  return { ...child, httpPort };
}

/** A port nothing listens on: the gateway's uplink stays down and readings stay in the outbox. */
export async function closedNatsUrl(): Promise<string> {
  return `nats://127.0.0.1:${await freePort()}`;
}

/** Delete the streams a stage created under its NATS prefix. */
export async function dropStreams(natsUrl: string, prefix: string): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(subjects(prefix).stream).catch(() => undefined);
    await jsm.streams.delete(subjects(prefix).deadLetterStream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}
