import { parseArgs } from "node:util";
import { ConfigError, commonFields, describeConfig, loadConfig, onStopSignal, usageProblem } from "@datalab/shared";
import { parseReplayArgs, REPLAY_FLAGS, REPLAY_HELP, replayCommand } from "./replay/command";
import { parseSimulateArgs, SIMULATE_FLAGS, SIMULATE_HELP, simulateCommand } from "./simulate/command";
import { OutputError } from "./simulate/outputs/types";

const HELP = `Usage: pnpm sensors <command> [options]

Commands:
  simulate        simulated sensors to MQTT, a serial port or stdout
  replay FILE     a recorded data set (Intel Lab, CSV) to MQTT, a serial port or stdout
  help            this text

${SIMULATE_HELP}
${REPLAY_HELP}
Examples:
  pnpm sensors simulate --sensors 20 --interval 60 --kinds temperature,humidity,light,battery
  pnpm sensors simulate --profile realistic --speed max --count 100000
  pnpm sensors simulate --out serial:/dev/ttyUSB0@115200:mysensors
  pnpm sensors replay data.txt --speed 100
  pnpm sensors replay single-hop.csv --sensor mote_id --interval 5 --start 2010-06-01T00:00:00Z \\
      --metric humidity=humidity:%RH --metric temperature=temperature:Cel --speed max \\
      --gateway http://127.0.0.1:9101

Configuration (environment variables):
${describeConfig({ mqttUrl: commonFields.mqttUrl })}
`;

const CONFIG = `Configuration (environment variables):
${describeConfig({ mqttUrl: commonFields.mqttUrl })}
`;

/** One command's help: its own options and the variables it reads, nothing else. */
const COMMAND_HELP: Record<string, string> = {
  simulate: `Usage: pnpm sensors simulate [options]\n\n${SIMULATE_HELP}\n${CONFIG}`,
  replay: `Usage: pnpm sensors replay FILE [options]\n\n${REPLAY_HELP}\n${CONFIG.trimEnd()}
  DATALAB_GATEWAY_URL  the gateway's HTTP address, as --gateway
  DATALAB_HTTP_TOKEN (or DATALAB_HTTP_TOKEN_FILE)  the gateway's token for its /metrics
`,
};

async function main(argv: string[]): Promise<number> {
  const cmd = argv[0] !== undefined && !argv[0].startsWith("-") ? argv[0] : "help";
  const rest = cmd === "help" ? [] : argv.slice(1);
  if (cmd === "help" || ((rest.includes("--help") || rest.includes("-h")) && !(cmd in COMMAND_HELP))) {
    process.stdout.write(HELP);
    return 0;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(COMMAND_HELP[cmd]!);
    return 0;
  }
  const ac = new AbortController();
  onStopSignal(() => ac.abort());
  if (cmd === "simulate") {
    const { values, positionals } = parseArgs({ args: rest, options: SIMULATE_FLAGS, allowPositionals: true });
    if (positionals.length > 0) throw new ConfigError([`simulate takes no arguments, got: ${positionals.join(" ")}`]);
    const args = parseSimulateArgs(values);
    const { mqttUrl } = loadConfig({ mqttUrl: commonFields.mqttUrl });
    return simulateCommand(args, mqttUrl, ac.signal);
  }
  if (cmd === "replay") {
    const { values, positionals } = parseArgs({ args: rest, options: REPLAY_FLAGS, allowPositionals: true });
    if (values.gateway === undefined && process.env.DATALAB_GATEWAY_URL)
      values.gateway = process.env.DATALAB_GATEWAY_URL;
    const args = parseReplayArgs(positionals, values);
    const { mqttUrl } = loadConfig({ mqttUrl: commonFields.mqttUrl });
    return replayCommand(args, mqttUrl, ac.signal);
  }
  throw new ConfigError([`unknown command "${cmd}" (commands: simulate, replay, help)`]);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Usage problems (bad flags, unknown options from parseArgs) exit 2 with the problem and a pointer to --help.
    const usage = usageProblem(err);
    if (err instanceof OutputError && err.reason === "closed") process.exit(0);
    if (usage !== undefined) {
      const hint = "(pnpm sensors <command> --help lists the options)";
      process.stderr.write(usage.includes("\n") ? `${usage}\n${hint}\n` : `${usage} ${hint}\n`);
      process.exit(2);
    }
    process.stderr.write(`${err instanceof OutputError ? err.message : ((err as Error).stack ?? String(err))}\n`);
    process.exit(1);
  },
);
