import { parseArgs } from "node:util";
import pg from "pg";
import { ConfigError, createLogger, describeConfig, redact } from "@datalab/shared";
import { hubFields, loadHubConfig } from "./config";
import { Hub } from "./hub";
import { migrate } from "./migrate";

const HELP = `Usage: pnpm hub <command> [options]

Commands:
  run       run the hub: NATS JetStream → PostgreSQL (and MongoDB when configured)
  migrate   apply pending database migrations and exit
  help      this text

Options:
  --config FILE   JSON config file (same keys as below); environment variables win
  -h, --help      this text

Configuration (environment variables):
${describeConfig(hubFields)}
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  const cmd = positionals[0] ?? "help";
  if (values.help || cmd === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  const config = loadHubConfig(values.config ? { file: values.config } : {});
  switch (cmd) {
    case "run": {
      const hub = new Hub(config);
      hub.logger.info({ config: redact(hubFields, config) }, "configuration");
      await hub.start();
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          hub.logger.info({ signal: sig }, "signal received");
          void hub.stop().then(resolve);
        };
        process.once("SIGINT", () => stop("SIGINT"));
        process.once("SIGTERM", () => stop("SIGTERM"));
      });
      return 0;
    }
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
    default:
      process.stderr.write(`unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
