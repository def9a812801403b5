import { parseArgs } from "node:util";
import { ConfigError, describeConfig, redact } from "@datalab/shared";
import { gatewayFields, loadGatewayConfig } from "./config";
import { Gateway } from "./gateway";

const HELP = `Usage: pnpm gateway <command> [options]

Commands:
  run       run the gateway: MQTT (and radios) → SQLite outbox → NATS JetStream
  status    print the running gateway's status (outbox, uplink, quarantine) as JSON
  help      this text

Options:
  --config FILE   JSON config file (same keys as below); environment variables win
  -h, --help      this text

Configuration (environment variables):
${describeConfig(gatewayFields)}
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
  const config = loadGatewayConfig(values.config ? { file: values.config } : {});
  switch (cmd) {
    case "run": {
      const gw = new Gateway(config);
      gw.logger.info({ config: redact(gatewayFields, config) }, "configuration");
      await gw.start();
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          gw.logger.info({ signal: sig }, "signal received");
          void gw.stop().then(resolve);
        };
        process.once("SIGINT", () => stop("SIGINT"));
        process.once("SIGTERM", () => stop("SIGTERM"));
      });
      return 0;
    }
    case "status": {
      const host = config.httpHost === "0.0.0.0" ? "127.0.0.1" : config.httpHost;
      try {
        const res = await fetch(`http://${host}:${config.httpPort}/status`);
        process.stdout.write(`${JSON.stringify(await res.json(), null, 2)}\n`);
        return 0;
      } catch (err) {
        process.stderr.write(`no gateway answers at http://${host}:${config.httpPort}/status (${(err as Error).message})\n`);
        return 1;
      }
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
