import { parseArgs } from "node:util";
import { ConfigError, commonFields, describeConfig, loadConfig } from "@datalab/shared";
import { publishSimulation } from "./simulate/mqtt-output";

const HELP = `Usage: pnpm sensors <command> [options]

Commands:
  simulate   publish simulated sensors to MQTT
  help       this text

simulate options:
  --sensors N        number of sensors (default 10)
  --rate R           messages per second, all sensors together (default 1)
  --seed S           seed: the same seed gives the same values (default 1)
  --count C          stop after C messages (default: run until Ctrl-C)
  --format F         multi: {"sensor","temperature","humidity","battery","ts"} on sensors/<id>;
                     original: the original DataLab {"name","value"} on sensors (default multi)
  --topic T          topic root (default sensors)
  --qos Q            0 or 1 (default 0)

Configuration (environment variables):
${describeConfig({ mqttUrl: commonFields.mqttUrl })}
`;

function num(v: string | undefined, name: string, def: number, min: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new ConfigError([`--${name}=${v}: expected a number ≥ ${min}`]);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      sensors: { type: "string" },
      rate: { type: "string" },
      seed: { type: "string" },
      count: { type: "string" },
      format: { type: "string" },
      topic: { type: "string" },
      qos: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const cmd = positionals[0] ?? "help";
  if (values.help || cmd === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  if (cmd !== "simulate") {
    process.stderr.write(`unknown command "${cmd}"\n\n${HELP}`);
    return 2;
  }
  const { mqttUrl } = loadConfig({ mqttUrl: commonFields.mqttUrl });
  const format = values.format ?? "multi";
  if (format !== "multi" && format !== "original") throw new ConfigError([`--format=${format}: expected multi or original`]);
  const qos = num(values.qos, "qos", 0, 0);
  if (qos !== 0 && qos !== 1) throw new ConfigError([`--qos=${qos}: expected 0 or 1`]);
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  process.once("SIGTERM", () => ac.abort());
  const rate = num(values.rate, "rate", 1, 0.001);
  const count = values.count === undefined ? undefined : num(values.count, "count", 0, 1);
  let lastLog = Date.now();
  const n = await publishSimulation({
    mqttUrl,
    sensors: num(values.sensors, "sensors", 10, 1),
    rate,
    seed: values.seed ?? "1",
    format,
    topicRoot: values.topic ?? "sensors",
    qos,
    signal: ac.signal,
    ...(count !== undefined ? { count } : {}),
    onProgress: (p) => {
      if (Date.now() - lastLog >= 5_000) {
        lastLog = Date.now();
        process.stderr.write(`published ${p} messages\n`);
      }
    },
  });
  process.stderr.write(`published ${n} messages to ${mqttUrl}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof ConfigError ? err.message : ((err as Error).stack ?? String(err))}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
