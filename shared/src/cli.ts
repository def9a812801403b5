import { ConfigError } from "./errors";

/**
 * Run a command-line entry point: exit with its code; a configuration or usage problem
 * exits 2 with the message only (it names the variable or flag), anything else exits 1
 * with the stack, which is a bug or a server problem worth the detail.
 */
export function runMain(main: (argv: string[]) => Promise<number>, helpHint = "--help lists the options"): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const usage = err instanceof ConfigError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
      if (usage) {
        process.stderr.write(`${(err as Error).message}\n(${helpHint})\n`);
        process.exit(2);
      }
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
