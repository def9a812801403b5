/**
 * A hub process whose sink SIGKILLs the process right after its Nth commit, before the
 * consumer can ack: the crash the idempotent sinks exist for. Run as a child process:
 *   node --import tsx crash-after-commit.ts <postgres|mongo> <N>
 * with the hub's configuration in DATALAB_* variables.
 */
import { silentLogger } from "@datalab/shared";
import { loadHubConfig } from "../../src/config";
import { Hub } from "../../src/hub";
import { createMongoSink, createPgPool, createPostgresSink } from "../../src/sinks/index";
import type { Sink, SinkBatch, WriteResult } from "../../src/sinks/types";

class CommitThenDie implements Sink {
  readonly name: string;
  private commits = 0;
  constructor(
    private readonly inner: Sink,
    private readonly after: number,
  ) {
    this.name = inner.name;
  }
  async write(b: SinkBatch): Promise<WriteResult> {
    const res = await this.inner.write(b);
    if (++this.commits >= this.after) {
      process.stderr.write(`CRASH committed stream seq ${b.streamSeq}; dying before the ack\n`);
      process.kill(process.pid, "SIGKILL");
      await new Promise(() => undefined);
    }
    return res;
  }
  healthy(): Promise<boolean> {
    return this.inner.healthy();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const which = process.argv[2];
const after = Number(process.argv[3] ?? "1");
const config = loadHubConfig();
const logger = silentLogger();
const inner =
  which === "mongo"
    ? await createMongoSink(config, logger)
    : await createPostgresSink(createPgPool(config, logger), logger);
if (!inner) throw new Error("mongo sink requested without DATALAB_MONGO_URL");
// The wrapped sink is the hub's only one; it keeps the real sink's name, so it binds to the
// same durable consumer ("postgres-sink" / "mongo-sink") a normal hub uses.
const hub = new Hub(
  { ...config, pgEnabled: false, mongoUrl: undefined },
  { logger, sinks: [new CommitThenDie(inner, after)] },
);
await hub.start();
process.stderr.write("READY\n");
