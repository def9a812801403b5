import { ConfigError } from "./errors";

/**
 * A command-line usage problem as one line a person reads: node:util parseArgs' errors
 * (an unknown flag, a flag without its value, an unexpected argument) name the flag in their
 * first sentence, and the rest is advice for programmers. Undefined for anything else.
 */
export function usageProblem(err: unknown): string | undefined {
  const code = (err as { code?: string } | null)?.code;
  if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
    const first = (err as Error).message.split(/\.\s/)[0]!.replace(/\.$/, "");
    return first.charAt(0).toLowerCase() + first.slice(1);
  }
  if (err instanceof ConfigError) return err.problems.length === 1 ? err.problems[0] : err.message;
  return undefined;
}

/**
 * Run a command-line entry point: exit with its code; a configuration or usage problem
 * exits 2 with the message only (it names the variable or flag), anything else exits 1
 * with the stack, which is a bug or a server problem worth the detail.
 */
export function runMain(main: (argv: string[]) => Promise<number>, helpHint = "--help lists the options"): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const usage = usageProblem(err);
      if (usage !== undefined) {
        // One problem is one line; several (a config file's) are listed one per line.
        process.stderr.write(usage.includes("\n") ? `${usage}\n(${helpHint})\n` : `${usage} (${helpHint})\n`);
        process.exit(2);
      }
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

/** A terminal's Ctrl-C reaches a process from the terminal and again from its launcher (tsx relays it): one stop. */
const SAME_STOP_MS = 1_000;

/**
 * Call `stop` once on SIGINT or SIGTERM. The handlers stay installed, so a signal repeated by a
 * launcher never falls through to Node's default (which kills the process mid-stop); a repeat
 * within a second is the same Ctrl-C, and a later one calls `again` (e.g. "exit now").
 */
export function onStopSignal(stop: (signal: NodeJS.Signals) => void, again?: (signal: NodeJS.Signals) => void): void {
  let first: number | undefined;
  const handle = (signal: NodeJS.Signals): void => {
    const now = Date.now();
    if (first === undefined) {
      first = now;
      stop(signal);
    } else if (now - first >= SAME_STOP_MS) again?.(signal);
  };
  process.on("SIGINT", handle);
  process.on("SIGTERM", handle);
}
