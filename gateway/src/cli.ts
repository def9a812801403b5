import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, describeConfig, errorMessage, onStopSignal, redact, runMain } from "@datalab/shared";
import { gatewayFields, loadGatewayConfig, type GatewayConfig } from "./config";
import { Gateway, gatewayHttpToken } from "./gateway";
import { formatStatus, readOfflineStatus, type GatewayStatus } from "./status";
import { portsCommand } from "./sources/serial/ports";
import { formatQuarantine, listQuarantine, parseSince } from "./quarantine-list";
import { downgradeOutbox } from "./outbox/downgrade";
import { OUTBOX_FORMAT } from "./outbox/schema";

const HELP = `Usage: pnpm gateway <command> [options]

Commands:
  run       run the gateway: MQTT (and radios) → SQLite outbox → NATS JetStream
  status    print the gateway's status: outbox backlog and size, oldest reading, forwarding
            rate and time to drain, uplink, quarantine, drops, last error. When no gateway
            answers on its HTTP port, the outbox file is read instead (read-only).
            Exit code 0: running; 3: not running (read from the file); 1: neither.
  quarantine  list the payloads the gateway refused, newest first, read from its outbox
  outbox    outbox format: print the outbox format this release writes;
            outbox downgrade --to N: convert the outbox for an older release (gateway stopped)
  ports     list serial ports with their stable /dev/serial/by-id names and USB ids (--json)
  help      this text

pnpm gateway <command> --help lists that command's options and variables.
`;

/** The variables `status` and `quarantine` read: where the outbox and the HTTP port are. */
const LOCATE_FIELDS = {
  gatewayId: gatewayFields.gatewayId,
  dataDir: gatewayFields.dataDir,
  httpHost: gatewayFields.httpHost,
  httpPort: gatewayFields.httpPort,
  httpToken: gatewayFields.httpToken,
  httpTokenFile: gatewayFields.httpTokenFile,
};

const COMMAND_HELP: Record<string, string> = {
  run: `Usage: pnpm gateway run [--config FILE]

Runs the gateway: MQTT (and radios) → SQLite outbox → NATS JetStream. Ctrl-C stops it after
a last drain (a second Ctrl-C: at once; committed readings are safe either way).

Options:
  --config FILE   JSON config file (same keys as below); environment variables win
  -h, --help      this text

Configuration (environment variables):
${describeConfig(gatewayFields)}
`,
  status: `Usage: pnpm gateway status [--json] [--config FILE]

The gateway's status: outbox backlog and size, oldest reading, forwarding rate and time to
drain, uplink, quarantine, drops, last error. When no gateway answers on its HTTP port, the
outbox file is read instead (read-only): DATALAB_DATA_DIR's, or the demo's
(DATALAB_DEMO_DIR/gateway, default .data/demo/gateway) when only that one exists.
Exit code 0: running; 3: not running (read from the file); 1: neither.

Options:
  --json          print JSON instead of text
  --config FILE   JSON config file; environment variables win
  -h, --help      this text

Configuration (environment variables):
${describeConfig(LOCATE_FIELDS)}
`,
  quarantine: `Usage: pnpm gateway quarantine [--since T] [--reason R] [--limit N] [--json]

Lists the payloads the gateway refused (its outbox's quarantine table, read-only; the gateway
may be running): time, source, reason, detail, and the payload as quoted text (control
characters escaped, never sent to the terminal), newest first.

Options:
  --since T       only since T: an ISO time, epoch ms, or a duration back from now (30m, 2h, 7d)
  --reason R      only this reason (e.g. not_json, bad_reading)
  --limit N       at most N (default 50)
  --json          JSON: {total, entries: [{id, receivedAt, source, reason, detail, payload,
                  payloadBytes, cut}]}, payloads cut to 64 KiB of text
  --config FILE   JSON config file; environment variables win
  -h, --help      this text

Configuration (environment variables):
${describeConfig({ dataDir: gatewayFields.dataDir })}
`,
  outbox: `Usage: pnpm gateway outbox format
       pnpm gateway outbox downgrade --to N [--config FILE]

format     prints the outbox format this release writes (and reads, with every earlier one).
downgrade  converts the outbox file (DATALAB_DATA_DIR/outbox.db) to format N, for a rollback
           to a release that reads only that format; install.sh --rollback runs it. The
           gateway must be stopped: a file still open elsewhere is left untouched. Formats
           ${OUTBOX_FORMAT} down to 3 are supported; a file already in format N or older is left as it is.

Options:
  --to N          the format to convert to
  --config FILE   JSON config file; environment variables win
  -h, --help      this text

Configuration (environment variables):
${describeConfig({ dataDir: gatewayFields.dataDir })}
`,
  ports: `Usage: pnpm gateway ports [--json]

Lists serial ports with their stable /dev/serial/by-id names and USB ids. Needs no config.

Options:
  --json          print JSON instead of text
  -h, --help      this text
`,
};

/** Each command's flags: a flag another command takes is still an unknown flag here. */
const COMMAND_FLAGS = {
  run: { config: { type: "string" } },
  status: { config: { type: "string" }, json: { type: "boolean" } },
  quarantine: {
    config: { type: "string" },
    json: { type: "boolean" },
    since: { type: "string" },
    reason: { type: "string" },
    limit: { type: "string" },
  },
  outbox: { config: { type: "string" }, to: { type: "string" } },
  ports: { json: { type: "boolean" } },
} as const;

const OUTBOX_ACTIONS = ["format", "downgrade"];

async function main(argv: string[]): Promise<number> {
  const cmd = argv[0] ?? "help";
  if (cmd === "help" || cmd === "--help" || cmd === "-h") {
    process.stdout.write(HELP);
    return 0;
  }
  if (cmd.startsWith("-")) throw new ConfigError([`unknown option ${cmd} (before the command)`]);
  if (!(cmd in COMMAND_FLAGS))
    throw new ConfigError([`unknown command "${cmd}" (commands: ${Object.keys(COMMAND_FLAGS).join(", ")}, help)`]);
  let rest = argv.slice(1);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(COMMAND_HELP[cmd]!);
    return 0;
  }
  // `outbox` alone takes an action word before its flags.
  const action = cmd === "outbox" ? rest[0] : undefined;
  if (cmd === "outbox") {
    if (action === undefined || !OUTBOX_ACTIONS.includes(action))
      throw new ConfigError([
        `outbox: expected an action (${OUTBOX_ACTIONS.join(", ")})${action === undefined ? "" : `, not "${action}"`}`,
      ]);
    rest = rest.slice(1);
  }
  const values = parseArgs({
    args: rest,
    options: COMMAND_FLAGS[cmd as keyof typeof COMMAND_FLAGS],
    allowPositionals: false,
  }).values as {
    config?: string;
    json?: boolean;
    since?: string;
    reason?: string;
    limit?: string;
    to?: string;
  };
  // Needs no config: listing ports must work before the config is written.
  if (cmd === "ports") return portsCommand(values.json === true);
  // Needs no config either: install.sh asks it of a release it is about to roll back from.
  if (action === "format") {
    process.stdout.write(`${OUTBOX_FORMAT}\n`);
    return 0;
  }
  const config = loadGatewayConfig(values.config ? { file: values.config } : {});
  switch (cmd) {
    case "run": {
      const gw = new Gateway(config);
      gw.logger.info({ config: redact(gatewayFields, config) }, "configuration");
      // Listening before the start: a Ctrl-C while starting stops it once started, never kills it midway.
      const signalled = new Promise<NodeJS.Signals>((resolve) =>
        onStopSignal(resolve, (sig) => {
          // A second signal: the operator does not want to wait for the last drain.
          // Committed readings are safe on disk either way.
          gw.logger.warn({ signal: sig }, "second signal: exiting now");
          process.exit(1);
        }),
      );
      await gw.start();
      gw.logger.info({ signal: await signalled }, "signal received");
      await gw.stop();
      return 0;
    }
    case "status":
      return status(config, values.json === true, values.config === undefined);
    case "quarantine": {
      const limit = values.limit === undefined ? 50 : Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new ConfigError([`--limit ${JSON.stringify(values.limit)}: expected a whole number ≥ 1`]);
      const filter = {
        limit,
        payloadChars: values.json ? 65_536 : 200,
        ...(values.since ? { sinceMs: parseSince(values.since) } : {}),
        ...(values.reason ? { reason: values.reason } : {}),
      };
      const path = outboxPath(config, values.config === undefined);
      let r: ReturnType<typeof listQuarantine>;
      try {
        r = listQuarantine(path, filter);
      } catch (err) {
        process.stderr.write(`the outbox cannot be read: ${errorMessage(err)}\n`);
        return 1;
      }
      process.stdout.write(
        values.json ? `${JSON.stringify({ outbox: path, ...r }, null, 2)}\n` : formatQuarantine(r, path),
      );
      return 0;
    }
    case "outbox":
      return outboxDowngrade(outboxPath(config, values.config === undefined), values.to);
    default:
      return 2;
  }
}

function outboxDowngrade(path: string, toText: string | undefined): number {
  if (toText === undefined) throw new ConfigError(["outbox downgrade: --to N is needed (the format to convert to)"]);
  const to = Number(toText);
  if (!/^\d+$/.test(toText) || !Number.isSafeInteger(to))
    throw new ConfigError([`--to ${JSON.stringify(toText)}: expected a format number, e.g. 3`]);
  let r: ReturnType<typeof downgradeOutbox>;
  try {
    r = downgradeOutbox(path, to);
  } catch (err) {
    process.stderr.write(`outbox downgrade: ${errorMessage(err)}\n`);
    return 1;
  }
  process.stdout.write(
    r.from === r.to
      ? `${path}: already in format ${r.from}; nothing to do\n`
      : `${path}: converted from format ${r.from} to ${r.to} ` +
          `(${r.converted} rows of wire format 2 written in format 1, ${r.unpacked} packed rows unpacked)\n`,
  );
  return 0;
}

/**
 * The outbox file: DATALAB_DATA_DIR's; when that is left to its default and has none, the
 * demo's (`pnpm demo` keeps it in DATALAB_DEMO_DIR/gateway, default .data/demo/gateway).
 */
function outboxPath(config: GatewayConfig, mayUseDemo: boolean): string {
  const path = join(config.dataDir, "outbox.db");
  if (existsSync(path) || !mayUseDemo || process.env.DATALAB_DATA_DIR) return path;
  const demo = join(resolve(process.env.DATALAB_DEMO_DIR || ".data/demo"), "gateway", "outbox.db");
  return existsSync(demo) ? demo : path;
}

async function status(config: GatewayConfig, json: boolean, mayUseDemo: boolean): Promise<number> {
  const host = config.httpHost === "0.0.0.0" || config.httpHost === "::" ? "127.0.0.1" : config.httpHost;
  const url = `http://${host}:${config.httpPort}/status`;
  let s: GatewayStatus;
  let code = 0;
  const token = gatewayHttpToken(config);
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(3_000),
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    });
    if (res.status === 401) {
      // A gateway answers, so the outbox file is in use: say what is missing instead of reading it.
      process.stderr.write(
        `the gateway at ${url} asks for a token: run with the same DATALAB_HTTP_TOKEN (or ` +
          `DATALAB_HTTP_TOKEN_FILE) as the gateway\n`,
      );
      return 1;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    s = (await res.json()) as GatewayStatus;
  } catch (err) {
    const path = outboxPath(config, mayUseDemo);
    try {
      s = readOfflineStatus(path, config.gatewayId);
      code = 3;
    } catch (fileErr) {
      process.stderr.write(
        `no gateway answers at ${url} (${errorMessage(err)}), and its outbox cannot be read: ` +
          `${errorMessage(fileErr)}\n`,
      );
      return 1;
    }
  }
  process.stdout.write(json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s, url));
  return code;
}

runMain(main, "pnpm gateway --help lists the options");
