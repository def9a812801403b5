/**
 * Runs a deploy file's NATS configuration on loopback, for tests that check what it lets in:
 * its ports, store and pid file moved to the test's own, everything else (users, permissions,
 * includes) as shipped.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, onFreshPorts, startNatsServer, tempDir, type NatsServer } from "@datalab/shared/testing";

export async function startShippedNats(conf: string, includes: Record<string, string>): Promise<NatsServer> {
  const storeDir = tempDir("datalab-shipped-nats-");
  for (const [name, text] of Object.entries(includes)) writeFileSync(join(storeDir, name), text);
  // Its monitoring and cluster ports are in the file: all three chosen again if one was taken.
  return onFreshPorts(async () => {
    const local = conf
      // The harness passes -p and -sd; a store_dir in the file as well is refused as a duplicate.
      .replace(/^\s*store_dir:.*$/m, "")
      .replace(/^(\s*)http_port:.*$/m, `$1http_port: ${await freePort()}`)
      .replace(/^(\s*)pid_file:.*$/m, `$1pid_file: ${join(storeDir, "nats.pid")}`)
      .replace(/^(\s*cluster\s*\{[\s\S]*?\n\s*)port:\s*\d+/m, `$1listen: 127.0.0.1:${await freePort()}`);
    return startNatsServer({ port: await freePort(), storeDir, config: local });
  });
}
