import { join } from "node:path";
import { parseArgs } from "node:util";
import { describeConfig, errorMessage, redact, runMain } from "@datalab/shared";
import { gatewayFields, loadGatewayConfig, type GatewayConfig } from "./config";
import { Gateway, gatewayHttpToken } from "./gateway";
import { formatStatus, readOfflineStatus, type GatewayStatus } from "./status";
import { portsCommand } from "./sources/ports";

const HELP = `Usage: pnpm gateway <command> [options]

Commands:
  run       run the gateway: MQTT (and radios) → SQLite outbox → NATS JetStream
  status    print the gateway's status: outbox backlog and size, oldest reading, forwarding
            rate and time to drain, uplink, quarantine, drops, last error. When no gateway
            answers on its HTTP port, the outbox file is read instead (read-only).
            Exit code 0: running; 3: not running (read from the file); 1: neither.
  ports     list serial ports with their stable /dev/serial/by-id names and USB ids (--json)
  help      this text

Options:
  --config FILE   JSON config file (same keys as below); environment variables win
  --json          status: print JSON instead of text
  -h, --help      this text

Configuration (environment variables):
${describeConfig(gatewayFields)}
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  const cmd = positionals[0] ?? "help";
  if (values.help || cmd === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  // Needs no config: listing ports must work before the config is written.
  if (cmd === "ports") return portsCommand(values.json === true);
  const config = loadGatewayConfig(values.config ? { file: values.config } : {});
  switch (cmd) {
    case "run": {
      const gw = new Gateway(config);
      gw.logger.info({ config: redact(gatewayFields, config) }, "configuration");
      await gw.start();
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (sig: string) => {
          if (stopping) {
            // A second signal: the operator does not want to wait for the last drain.
            // Committed readings are safe on disk either way.
            gw.logger.warn({ signal: sig }, "second signal: exiting now");
            process.exit(1);
          }
          stopping = true;
          gw.logger.info({ signal: sig }, "signal received");
          void gw.stop().then(resolve);
        };
        process.on("SIGINT", () => stop("SIGINT"));
        process.on("SIGTERM", () => stop("SIGTERM"));
      });
      return 0;
    }
    case "status":
      return status(config, values.json === true);
    default:
      process.stderr.write(`unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

async function status(config: GatewayConfig, json: boolean): Promise<number> {
  const host = config.httpHost === "0.0.0.0" || config.httpHost === "::" ? "127.0.0.1" : config.httpHost;
  const url = `http://${host}:${config.httpPort}/status`;
  let s: GatewayStatus;
  let code = 0;
  const token = gatewayHttpToken(config);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000), ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
    if (res.status === 401) {
      // A gateway answers, so the outbox file is in use: say what is missing instead of reading it.
      process.stderr.write(`the gateway at ${url} asks for a token: run with the same DATALAB_HTTP_TOKEN (or DATALAB_HTTP_TOKEN_FILE) as the gateway\n`);
      return 1;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    s = (await res.json()) as GatewayStatus;
  } catch (err) {
    const path = join(config.dataDir, "outbox.db");
    try {
      s = readOfflineStatus(path, config.gatewayId);
      code = 3;
    } catch (fileErr) {
      process.stderr.write(`no gateway answers at ${url} (${errorMessage(err)}), and its outbox cannot be read: ${errorMessage(fileErr)}\n`);
      return 1;
    }
  }
  process.stdout.write(json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s, url));
  return code;
}

runMain(main, "pnpm gateway --help lists the options");
