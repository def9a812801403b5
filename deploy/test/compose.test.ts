/**
 * The Docker Compose stack, checked without a Docker daemon: `docker-compose config` (Debian's
 * docker-compose package) accepts the file, and everything it points at exists — each
 * Dockerfile, each file a Dockerfile copies from the build context, each bind-mounted config.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";

const DEPLOY = fileURLToPath(new URL("..", import.meta.url));
const COMPOSE = join(DEPLOY, "compose.yaml");
const API_TOKEN = "compose-test-token-0123456789";

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  profiles?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  volumes?: (string | { type: string; source: string; target: string })[];
  environment?: Record<string, string>;
  user?: string;
  ports?: (string | { published: string | number; target: number; host_ip?: string })[];
}

/** Instructions of a Dockerfile: continuation lines joined, comments dropped. */
function dockerfileInstructions(text: string): { op: string; args: string }[] {
  const out: { op: string; args: string }[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    // Docker drops comment lines, also inside a continued instruction.
    if (line === "" || line.startsWith("#")) continue;
    current += (current ? " " : "") + line.replace(/\\$/, "").trim();
    if (!line.endsWith("\\")) {
      const m = /^(\S+)\s*(.*)$/.exec(current.trim());
      if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]! });
      current = "";
    }
  }
  return out;
}

/** Sources of COPY/ADD from the build context (not from another stage). */
function contextSources(instructions: { op: string; args: string }[]): string[] {
  const sources: string[] = [];
  for (const { op, args } of instructions) {
    if (op !== "COPY" && op !== "ADD") continue;
    const words = args.split(/\s+/).filter(Boolean);
    if (words.some((w) => w.startsWith("--from="))) continue;
    const paths = words.filter((w) => !w.startsWith("--"));
    sources.push(...paths.slice(0, -1));
  }
  return sources;
}

function composeBinary(): string {
  const r = spawnSync("sh", ["-c", "command -v docker-compose"], { encoding: "utf8" });
  const path = r.stdout.trim();
  if (!path) throw new Error("docker-compose is not installed: apt-get install -y docker-compose (Debian's package; CI's .ci/run must install it)");
  return path;
}

describe("deploy/compose.yaml", () => {
  let services: Record<string, Service>;

  beforeAll(() => {
    // --profile sim: the gateway and simulator services are checked too.
    const r = spawnSync(composeBinary(), ["-f", COMPOSE, "--profile", "sim", "config"], {
      encoding: "utf8",
      cwd: DEPLOY,
      env: { ...process.env, DATALAB_PG_PASSWORD: "", DATALAB_API_TOKEN: API_TOKEN },
    });
    expect(r.status, `docker-compose config failed:\n${r.stderr}`).toBe(0);
    services = (parse(r.stdout) as { services: Record<string, Service> }).services;
  });

  it("holds the original DataLab's services plus NATS, the hub, a simulated gateway profile and Jupyter", () => {
    expect(Object.keys(services).sort()).toEqual(["gateway", "hub", "jupyter", "mongo", "mosquitto", "nats", "postgres", "sensors"]);
    expect(services.gateway!.profiles).toEqual(["sim"]);
    expect(services.sensors!.profiles).toEqual(["sim"]);
    expect(services.hub!.profiles).toBeUndefined();
  });

  it("gives every server a health check, and starts the hub only once NATS and Postgres are healthy", () => {
    for (const name of ["mosquitto", "nats", "postgres", "mongo", "hub", "gateway", "jupyter"]) {
      expect(services[name]!.healthcheck?.test.length, `${name} has a health check`).toBeGreaterThan(1);
    }
    expect(services.hub!.depends_on).toMatchObject({ nats: { condition: "service_healthy" }, postgres: { condition: "service_healthy" } });
    expect(services.hub!.environment).toMatchObject({ DATALAB_NATS_URL: "nats://nats:4222", DATALAB_MONGO_URL: "mongodb://mongo:27017/" });
    // An empty password must not leave a broken URL behind: the default applies.
    expect(services.hub!.environment!.DATALAB_PG_URL).toBe("postgres://datalab:datalab@postgres:5432/datalab");
  });

  it("puts the hub and the gateway on all container interfaces only with a token, which the stack refuses to start without", () => {
    for (const name of ["hub", "gateway"]) expect(services[name]!.environment!.DATALAB_HTTP_HOST, name).toBe("0.0.0.0");
    expect(services.hub!.environment!.DATALAB_API_TOKEN).toBe(API_TOKEN);
    expect(services.gateway!.environment!.DATALAB_HTTP_TOKEN).toBe(API_TOKEN);
    // The gateway's status port is for this machine only.
    expect(JSON.stringify(services.gateway!.ports)).toMatch(/127\.0\.0\.1/);
    // NATS without users: this machine only (docs/security.md).
    expect(JSON.stringify(services.nats!.ports)).toMatch(/127\.0\.0\.1/);
    const { DATALAB_API_TOKEN: _unset, ...env } = process.env;
    const r = spawnSync(composeBinary(), ["-f", COMPOSE, "--profile", "sim", "config"], { encoding: "utf8", cwd: DEPLOY, env });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/set DATALAB_API_TOKEN to a random token of 16\+ characters/);
  });

  it("references only files that exist: Dockerfiles, what they copy from the context, bind-mounted configs", () => {
    const built = Object.entries(services).filter(([, s]) => s.build);
    expect(built.map(([n]) => n).sort()).toEqual(["gateway", "hub", "jupyter", "sensors"]);
    for (const [name, s] of built) {
      const dockerfile = join(s.build!.context, s.build!.dockerfile);
      expect(existsSync(dockerfile), `${name}: ${dockerfile}`).toBe(true);
      const sources = contextSources(dockerfileInstructions(readFileSync(dockerfile, "utf8")));
      expect(sources.length, `${name}: COPY instructions found`).toBeGreaterThan(0);
      for (const src of sources) expect(existsSync(join(s.build!.context, src)), `${name}: COPY ${src}`).toBe(true);
    }
    let binds = 0;
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const source = typeof v === "string" ? v.split(":")[0]! : v.source;
        if (!isAbsolute(source)) continue; // a named volume
        binds += 1;
        expect(existsSync(source), `${name}: bind mount ${source}`).toBe(true);
      }
    }
    expect(binds).toBeGreaterThanOrEqual(3); // mosquitto.conf, nats.conf, notebooks
  });

  it("builds every Node.js image in two stages on node:22-bookworm-slim and runs it as a user other than root", () => {
    for (const name of ["hub", "gateway", "sensors", "jupyter"]) {
      const s = services[name]!;
      const ins = dockerfileInstructions(readFileSync(join(s.build!.context, s.build!.dockerfile), "utf8"));
      const froms = ins.filter((i) => i.op === "FROM");
      const lastFrom = ins.lastIndexOf(froms[froms.length - 1]!);
      const user = ins.slice(lastFrom).filter((i) => i.op === "USER").pop();
      expect(user?.args, `${name}: USER in the final stage`).toBeDefined();
      expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
      if (name === "jupyter") continue;
      expect(froms.length, `${name}: multi-stage`).toBe(2);
      const arg = ins.find((i) => i.op === "ARG" && i.args.startsWith("NODE_IMAGE="));
      expect(arg?.args).toBe("NODE_IMAGE=node:22-bookworm-slim");
    }
  });

  it("parses Dockerfile instructions across continuation lines and comments", () => {
    const ins = dockerfileInstructions("FROM a AS b\n# note\nRUN x \\\n # inner comment\n && y\nCOPY --from=b /out /app\nCOPY --chown=u:g src/ dst/\n");
    expect(ins.map((i) => i.op)).toEqual(["FROM", "RUN", "COPY", "COPY"]);
    expect(ins[1]!.args).toBe("x && y");
    expect(contextSources(ins)).toEqual(["src/"]);
  });
});
