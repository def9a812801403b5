import { parseArgs } from "node:util";
import pg from "pg";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  ConfigError,
  connectNats,
  createLogger,
  describeConfig,
  natsConnectionOptions,
  onStopSignal,
  redact,
  subjects,
  runMain,
} from "@datalab/shared";
import { hubFields, loadHubConfig, type HubConfig } from "./config";
import { listDeadLetters, replayDeadLetters, type DeadLetter } from "./consume/dead-letters";
import { hubStatus, type HubStatusReport } from "./consume/status";
import { Hub } from "./hub";
import { migrate } from "./sinks/postgres-migrate";

const HELP = `Usage: pnpm hub <command> [options]

Commands:
  run            run the hub: NATS JetStream → PostgreSQL (and MongoDB when configured)
  migrate        apply pending database migrations and exit
  status         per sink: batches still to write (lag), dead letters, Postgres' last write;
                 exit code 1 when NATS, the stream or Postgres is down
  dead-letters   list batches the sinks gave up on (reason, error, subject, size, time)
  help           this text

Options:
  --config FILE    JSON config file (same keys as below); environment variables win
  --json           (status, dead-letters) machine-readable output
  --replay         (dead-letters) publish the listed batches back to their subject, then
                   delete them from the dead-letter stream
  --sink NAME      (dead-letters) only this sink's (postgres, mongo)
  --reason R       (dead-letters) only this reason (e.g. sink_rejected, not_json)
  --seq N          (dead-letters) only the dead letter with this sequence
  --limit N        (dead-letters) at most N, oldest first (default 100)
  -h, --help       this text

pnpm hub <command> --help lists that command's options and variables; run --help all of them.
`;

/** The variables a command that only reads NATS (and Postgres) uses: the server, its prefix and credentials. */
const natsOnly = Object.fromEntries(
  Object.entries(hubFields).filter(
    ([k]) => k === "natsUrl" || k === "natsPrefix" || (k.startsWith("nats") && k !== "natsEnsureStream"),
  ),
) as Partial<typeof hubFields>;

const COMMAND_HELP: Record<string, string> = {
  run: `Usage: pnpm hub run [--config FILE]

Runs the hub: NATS JetStream → PostgreSQL (and MongoDB when configured), the query API, live
stream and dashboard. Ctrl-C stops it cleanly.

Options:
  --config FILE    JSON config file (same keys as below); environment variables win
  -h, --help       this text

Configuration (environment variables):
${describeConfig(hubFields)}
`,
  migrate: `Usage: pnpm hub migrate [--config FILE]

Applies pending database migrations and exits.

Configuration (environment variables):
${describeConfig({ pgUrl: hubFields.pgUrl })}
`,
  status: `Usage: pnpm hub status [--json] [--config FILE]

Per sink: batches still to write (lag), dead letters, Postgres' last write. Exit code 1 when
NATS, the stream or Postgres is down.

Configuration (environment variables):
${describeConfig({ ...natsOnly, pgUrl: hubFields.pgUrl, pgEnabled: hubFields.pgEnabled, mongoUrl: hubFields.mongoUrl })}
`,
  "dead-letters": `Usage: pnpm hub dead-letters [--sink NAME] [--reason R] [--seq N] [--limit N] [--replay] [--json]

Lists batches the sinks gave up on (reason, error, subject, size, time); --replay publishes
them back to their subject, then deletes them from the dead-letter stream.

Configuration (environment variables):
${describeConfig(natsOnly)}
`,
};

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      help: { type: "boolean", short: "h" },
      json: { type: "boolean" },
      replay: { type: "boolean" },
      sink: { type: "string" },
      reason: { type: "string" },
      seq: { type: "string" },
      limit: { type: "string" },
    },
  });
  const cmd = positionals[0] ?? "help";
  if (values.help || cmd === "help") {
    process.stdout.write(COMMAND_HELP[cmd] ?? HELP);
    return 0;
  }
  const config = loadHubConfig(values.config ? { file: values.config } : {});
  switch (cmd) {
    case "run":
      return run(config);
    case "migrate": {
      const logger = createLogger("hub", config.logLevel);
      const pool = new pg.Pool({ connectionString: config.pgUrl, max: 1 });
      try {
        const applied = await migrate(pool, logger);
        process.stdout.write(applied.length ? `applied migrations: ${applied.join(", ")}\n` : "schema is up to date\n");
      } finally {
        await pool.end();
      }
      return 0;
    }
    case "status":
      return withNats(config, async (nc) => {
        const pool = config.pgEnabled
          ? new pg.Pool({ connectionString: config.pgUrl, max: 1, connectionTimeoutMillis: 5_000 })
          : undefined;
        try {
          const sinks = [...(config.pgEnabled ? ["postgres"] : []), ...(config.mongoUrl ? ["mongo"] : [])];
          const report = await hubStatus(nc, subjects(config.natsPrefix), sinks, pool);
          process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
          // What it checks is down (the stream, Postgres): a script or probe sees it in the code.
          return "error" in report.stream || (report.postgres !== undefined && !report.postgres.reachable) ? 1 : 0;
        } finally {
          await pool?.end();
        }
      });
    case "dead-letters":
      return withNats(config, async (nc) => {
        const subj = subjects(config.natsPrefix);
        const seq = values.seq !== undefined ? positiveInt(values.seq, "--seq") : undefined;
        const limit = values.limit !== undefined ? positiveInt(values.limit, "--limit") : 100;
        const letters = await listDeadLetters(nc, subj, {
          ...(values.sink ? { sink: values.sink } : {}),
          ...(values.reason ? { reason: values.reason } : {}),
          ...(seq !== undefined ? { seq } : {}),
          limit,
        });
        if (!values.replay) {
          process.stdout.write(
            values.json
              ? `${JSON.stringify(
                  letters.map(({ data: _data, ...d }) => d),
                  null,
                  2,
                )}\n`
              : formatDeadLetters(letters),
          );
          return 0;
        }
        const results = await replayDeadLetters(nc, subj, letters);
        const failed = results.filter((r) => !r.ok);
        if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
        else {
          for (const r of results)
            process.stdout.write(
              r.ok ? `replayed #${r.seq} to ${r.subject}\n` : `FAILED #${r.seq} (${r.subject}): ${r.error}\n`,
            );
          process.stdout.write(`${results.length - failed.length} replayed, ${failed.length} failed\n`);
        }
        return failed.length > 0 ? 1 : 0;
      });
    default:
      process.stderr.write(`unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

async function run(config: HubConfig): Promise<number> {
  const hub = new Hub(config);
  hub.logger.info({ config: redact(hubFields, config) }, "configuration");
  // Listening before the start: a Ctrl-C while starting stops it once started, never kills it midway.
  const signalled = new Promise<NodeJS.Signals>((resolve) => onStopSignal(resolve));
  await hub.start();
  hub.logger.info({ signal: await signalled }, "signal received");
  await hub.stop();
  return 0;
}

/** A short-lived connection for a command: fail fast instead of waiting for NATS for ever. */
async function withNats(config: HubConfig, fn: (nc: NatsConnection) => Promise<number>): Promise<number> {
  const opts = {
    ...natsConnectionOptions(config.natsUrl, config, "datalab-hub-cli"),
    waitOnFirstConnect: false,
    maxReconnectAttempts: 0,
  };
  let nc: NatsConnection;
  try {
    nc = await connectNats(opts);
  } catch (err) {
    process.stderr.write(`cannot reach NATS at ${config.natsUrl.join(", ")}: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError([`${name}=${JSON.stringify(v)}: expected a positive integer`]);
  return n;
}

function formatStatus(r: HubStatusReport): string {
  const out: string[] = [];
  if ("error" in r.stream) out.push(`stream ${r.stream.name}: ${r.stream.error}`);
  else
    out.push(
      `stream ${r.stream.name}: ${r.stream.batches} batches, ` +
        `${(r.stream.bytes / 1048576).toFixed(1)} MiB, last seq ${r.stream.lastSeq}`,
    );
  out.push("");
  out.push(
    table(
      ["sink", "durable", "lag", "pending", "ack pending", "redelivered"],
      r.consumers.map((c) =>
        c.exists
          ? [c.sink, c.durable, c.lag, c.pending, c.ackPending, c.redelivered]
          : [c.sink, c.durable, "(no consumer yet)", "", "", ""],
      ),
    ),
  );
  const by = Object.entries(r.deadLetters.bySink)
    .map(([s, n]) => `${s}: ${n}`)
    .join(", ");
  out.push("");
  out.push(`dead letters: ${r.deadLetters.total}${by ? ` (${by})` : ""}`);
  if (r.postgres) {
    const p = r.postgres;
    if (!p.reachable) out.push(`postgres: not reachable (${p.error})`);
    else {
      const ago = p.lastWriteAt ? ` (${Math.round((Date.now() - Date.parse(p.lastWriteAt)) / 1000)} s ago)` : "";
      const about = p.readingsEstimate !== null ? `, about ${p.readingsEstimate} readings` : "";
      out.push(`postgres: last write ${p.lastWriteAt ?? "never"}${ago}${about}`);
      if (p.gateways.length) {
        out.push("");
        out.push(
          table(
            ["gateway", "last batch", "instance", "last seq", "readings"],
            p.gateways.map((g) => [g.gatewayId, g.lastBatchAt, g.lastInstance, g.lastSeq, g.lastBatchReadings]),
          ),
        );
      }
    }
  }
  return `${out.join("\n")}\n`;
}

function formatDeadLetters(letters: readonly DeadLetter[]): string {
  if (letters.length === 0) return "no dead letters\n";
  return `${table(
    ["seq", "time", "sink", "reason", "message", "size", "subject", "error"],
    // "message": the one message of its batch a letter holds (its position), or the whole batch.
    letters.map((d) => [
      d.seq,
      d.time.toISOString(),
      d.sink,
      d.reason,
      d.message ?? "all",
      d.size,
      d.subject,
      d.error.length > 120 ? `${d.error.slice(0, 117)}...` : d.error,
    ]),
  )}\n`;
}

function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

runMain(main, "pnpm hub --help lists the options");
