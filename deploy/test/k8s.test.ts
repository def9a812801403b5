/**
 * The Kubernetes manifests, checked without a cluster: `kubectl kustomize` (what `kubectl apply
 * -k` applies) builds them, every object has the fields the API server requires, workloads
 * carry images, probes and resources, and the names they refer to (Services, ConfigMaps,
 * Secrets, the HPA's target) exist. The hub's config loader reads every value it would get, and
 * the NATS configuration runs on a real nats-server.
 */
import { execFile } from "node:child_process";
import { cpSync, readdirSync, readFileSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { ConfigError } from "@datalab/shared";
import { tempDir, type NatsServer } from "@datalab/shared/testing";
import { Hub, loadHubConfig } from "@datalab/hub";
import { parse, parseAllDocuments } from "yaml";
import { startShippedNats } from "./nats-server-config";

const K8S = fileURLToPath(new URL("../k8s/", import.meta.url));

type Obj = Record<string, unknown>;
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Obj;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
interface Container {
  name: string;
  image: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  ports?: { name?: string; containerPort: number }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  env?: { name: string; value?: string; valueFrom?: Obj }[];
  securityContext?: Obj;
}
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: {
    containers: Container[];
    volumes?: { name: string; configMap?: { name: string } }[];
    securityContext?: Obj;
    affinity?: Obj;
  };
}

/** What `kubectl apply -k <dir>` would apply. */
async function kustomize(dir: string): Promise<K8sObject[]> {
  const { stdout } = await promisify(execFile)("kubectl", ["kustomize", dir], { encoding: "utf8" }).catch(
    (err: Error) => {
      throw new Error(`kubectl kustomize ${dir} failed (kubectl installed?): ${err.message}`, { cause: err });
    },
  );
  return parseAllDocuments(stdout).map((doc) => {
    expect(doc.errors).toEqual([]);
    return doc.toJS() as K8sObject;
  });
}

let objects: K8sObject[] = [];
const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
const named = (kind: string, name: string) => byKind(kind).find((o) => o.metadata.name === name);
/** A generated ConfigMap: its name is the generator's plus a content hash. */
const generated = (name: string) => {
  const found = byKind("ConfigMap").filter((o) => new RegExp(`^${name}-[a-z0-9]{10}$`).test(o.metadata.name));
  expect(found, `ConfigMap ${name}-<hash>`).toHaveLength(1);
  return found[0]!;
};
const workloads = () => [...byKind("Deployment"), ...byKind("StatefulSet")];
const template = (w: K8sObject) => (w.spec as { template: PodTemplate }).template;

beforeAll(async () => {
  objects = await kustomize(K8S);
});

describe("deploy/k8s manifests", () => {
  it("build with kustomize; every object names its apiVersion, kind and metadata.name in the datalab namespace", () => {
    expect(objects.length).toBeGreaterThanOrEqual(10);
    for (const obj of objects) {
      const where = `${obj.kind}/${obj.metadata?.name}`;
      expect(obj.apiVersion, where).toMatch(/^([a-z.]+\/)?v\d+(beta\d+)?$/);
      expect(obj.kind, where).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(obj.metadata?.name, where).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (obj.kind !== "Namespace") expect(obj.metadata.namespace, where).toBe("datalab");
      if (!["ConfigMap", "Secret", "Namespace"].includes(obj.kind))
        expect(obj.spec, `${where}: spec`).toBeTypeOf("object");
    }
  });

  it("lists every manifest file in the kustomization", () => {
    const k = parse(readFileSync(join(K8S, "kustomization.yaml"), "utf8")) as { resources: string[] };
    const files = readdirSync(K8S).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    expect([...k.resources].sort()).toEqual(files.sort());
  });

  it(
    "rolls the pods when their configuration changes: " +
      "ConfigMaps generated with a content hash the workloads refer to",
    async () => {
      const hubConfig = generated("datalab-hub").metadata.name;
      const natsConfig = generated("nats-config").metadata.name;
      expect(template(named("Deployment", "datalab-hub")!).spec.containers[0]!.envFrom).toContainEqual({
        configMapRef: { name: hubConfig },
      });
      expect(template(named("StatefulSet", "nats")!).spec.volumes).toContainEqual({
        name: "config",
        configMap: { name: natsConfig },
      });
      // An edit gives a new name, hence a new pod template.
      const copy = tempDir("datalab-k8s-");
      cpSync(K8S, copy, { recursive: true });
      appendFileSync(join(copy, "hub.env"), "DATALAB_MAX_DELIVER=6\n");
      writeFileSync(join(copy, "nats.conf"), `${readFileSync(join(copy, "nats.conf"), "utf8")}\n# edited\n`);
      const edited = await kustomize(copy);
      const names = edited.filter((o) => o.kind === "ConfigMap").map((o) => o.metadata.name);
      expect(names).not.toContain(hubConfig);
      expect(names).not.toContain(natsConfig);
    },
  );

  it("moves to another namespace with one line in the kustomization", async () => {
    const copy = tempDir("datalab-k8s-ns-");
    cpSync(K8S, copy, { recursive: true });
    const k = join(copy, "kustomization.yaml");
    writeFileSync(k, readFileSync(k, "utf8").replace(/^namespace: datalab$/m, "namespace: sensors"));
    const moved = await kustomize(copy);
    for (const o of moved)
      expect(o.kind === "Namespace" ? o.metadata.name : o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(
        "sensors",
      );
    // Nothing else names the namespace: routes and URLs are short names.
    expect(JSON.stringify(moved)).not.toMatch(/\.datalab\.svc|\.datalab:/);
  });

  it("gives every container an image, resources and probes, and runs it as non-root", () => {
    expect(workloads().length).toBe(2);
    for (const w of workloads()) {
      const spec = w.spec as { selector: { matchLabels: Record<string, string> } };
      const t = template(w);
      // The selector must match the pods the template makes, or the API server refuses it.
      expect(t.metadata.labels, w.metadata.name).toMatchObject(spec.selector.matchLabels);
      expect(t.spec.securityContext?.runAsNonRoot, w.metadata.name).toBe(true);
      expect(t.spec.containers.length).toBeGreaterThan(0);
      for (const c of t.spec.containers) {
        const where = `${w.metadata.name}/${c.name}`;
        expect(c.image, where).toMatch(/^[\w./-]+:[\w.-]+$/);
        expect(c.resources?.requests?.cpu, where).toBeDefined();
        expect(c.resources?.requests?.memory, where).toBeDefined();
        expect(c.resources?.limits?.memory, where).toBeDefined();
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
          expect(probe?.httpGet?.path, where).toMatch(/^\/healthz/);
          const port = probe!.httpGet!.port;
          // A named port must be one the container declares.
          if (typeof port === "string")
            expect(
              c.ports?.map((p) => p.name),
              where,
            ).toContain(port);
        }
        expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
        expect(c.securityContext?.readOnlyRootFilesystem, where).toBe(true);
      }
    }
  });

  it(
    "runs the hub horizontally: the HPA owns the replica count, probes on /healthz, " +
      "config from a ConfigMap and a Secret",
    () => {
      const hub = named("Deployment", "datalab-hub")!;
      // A count here would reset the HPA's on every apply.
      expect((hub.spec as { replicas?: number }).replicas).toBeUndefined();
      const c = template(hub).spec.containers[0]!;
      expect(c.readinessProbe?.httpGet?.path).toBe("/healthz");
      expect(c.livenessProbe?.httpGet?.path).toBe("/healthz");
      for (const ref of c.envFrom ?? []) {
        if (ref.configMapRef) expect(named("ConfigMap", ref.configMapRef.name), ref.configMapRef.name).toBeDefined();
        if (ref.secretRef) expect(named("Secret", ref.secretRef.name), ref.secretRef.name).toBeDefined();
      }
      expect(c.envFrom?.map((r) => Object.keys(r)[0]).sort()).toEqual(["configMapRef", "secretRef"]);
      const secret = named("Secret", "datalab-hub")!;
      expect(Object.keys(secret.stringData ?? {})).toEqual(
        expect.arrayContaining(["DATALAB_PG_URL", "DATALAB_MONGO_URL"]),
      );
      // Beyond loopback the hub starts only with a token (16+ characters): the Secret carries one.
      expect(generated("datalab-hub").data?.DATALAB_HTTP_HOST).toBe("0.0.0.0");
      expect(secret.stringData?.DATALAB_API_TOKEN?.length).toBeGreaterThanOrEqual(16);
      const hpa = named("HorizontalPodAutoscaler", "datalab-hub")!;
      expect(hpa.spec).toMatchObject({ scaleTargetRef: { kind: "Deployment", name: "datalab-hub" } });
      expect((hpa.spec as { minReplicas: number }).minReplicas).toBeGreaterThanOrEqual(2);
      // Streams replicated on all three NATS servers.
      expect(generated("datalab-hub").data?.DATALAB_STREAM_REPLICAS).toBe("3");
    },
  );

  it("refuses to start the hub with the shipped placeholders, naming each secret; all other values load", async () => {
    const env = {
      ...generated("datalab-hub").data,
      ...named("Secret", "datalab-hub")!.stringData,
      DATALAB_NATS_PASSWORD: named("Secret", "datalab-nats-users")!.stringData!.DATALAB_NATS_HUB_PASSWORD,
    };
    // The real loader accepts every value as shipped...
    const config = loadHubConfig({ env });
    expect(config.streamReplicas).toBe(3);
    // ...and the hub refuses before connecting to anything.
    const err = await new Hub(config).start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    for (const name of ["DATALAB_API_TOKEN", "DATALAB_NATS_PASSWORD", "DATALAB_PG_URL", "DATALAB_MONGO_URL"])
      expect(problems).toContain(`${name}: still holds the placeholder`);
  });

  it(
    "runs NATS as a JetStream cluster of three on three nodes, " +
      "with namespace-independent routes and a volume each",
    () => {
      const nats = named("StatefulSet", "nats")!;
      const spec = nats.spec as {
        replicas: number;
        serviceName: string;
        volumeClaimTemplates: { metadata: { name: string }; spec: { resources: { requests: { storage: string } } } }[];
      };
      expect(spec.replicas).toBe(3);
      const headless = named("Service", spec.serviceName)!;
      expect((headless.spec as { clusterIP: string }).clusterIP).toBe("None");
      const conf = generated("nats-config").data!["nats.conf"]!;
      expect(conf).toMatch(/jetstream\s*\{/);
      // Short names: the pod's DNS search path supplies the namespace and cluster domain.
      const routes = [...conf.matchAll(/nats:\/\/(nats-\d)\.([a-z-]+):6222/g)];
      expect(routes.map((m) => m[1])).toEqual(["nats-0", "nats-1", "nats-2"]);
      for (const m of routes) expect(m[2]).toBe(spec.serviceName);
      expect(conf).not.toMatch(/svc\.cluster\.local|\.datalab\./);
      // One server per node, required (a documented minimum of three nodes).
      const anti = (template(nats).spec.affinity as { podAntiAffinity?: Record<string, { topologyKey: string }[]> })
        .podAntiAffinity!;
      expect(anti.requiredDuringSchedulingIgnoredDuringExecution?.[0]?.topologyKey).toBe("kubernetes.io/hostname");
      expect(readFileSync(join(K8S, "README.md"), "utf8")).toMatch(/three schedulable nodes/);
      // A server catching up on its streams is not ready, but not killed: only readiness waits for it.
      const c = template(nats).spec.containers[0]!;
      expect(c.startupProbe?.httpGet?.path).toBe("/healthz?js-enabled-only=true");
      expect(c.readinessProbe?.httpGet?.path).toBe("/healthz");
      // The hub reaches every member.
      const urls = generated("datalab-hub").data!.DATALAB_NATS_URL!.split(",");
      expect(urls).toHaveLength(3);
      for (const v of template(nats).spec.volumes ?? [])
        if (v.configMap) expect(named("ConfigMap", v.configMap.name)).toBeDefined();
    },
  );

  it("leaves headroom on the NATS volume: the stream caps fit in max_file_store, which fits well in the volume", () => {
    const gib = 1024 ** 3;
    const volume = named("StatefulSet", "nats")!.spec as {
      volumeClaimTemplates: { metadata: { name: string }; spec: { resources: { requests: { storage: string } } } }[];
    };
    const data = volume.volumeClaimTemplates.find((v) => v.metadata.name === "data")!;
    const volumeGiB = Number(/^(\d+)Gi$/.exec(data.spec.resources.requests.storage)![1]);
    const fileStoreGiB = Number(/max_file_store:\s*(\d+)GB/.exec(generated("nats-config").data!["nats.conf"]!)![1]);
    expect(fileStoreGiB).toBeLessThanOrEqual(volumeGiB * 0.85);
    const config = loadHubConfig({ env: generated("datalab-hub").data! });
    expect(config.streamMaxBytes).toBeGreaterThan(0);
    // JetStream reserves each stream's cap: readings plus 1 GiB of dead letters.
    expect(config.streamMaxBytes + gib).toBeLessThanOrEqual(fileStoreGiB * gib);
  });

  describe("NATS as configured", () => {
    let server: NatsServer;
    const passwords = () => named("Secret", "datalab-nats-users")!.stringData!;

    beforeAll(async () => {
      const conf = generated("nats-config").data!;
      // As the StatefulSet gives them: the pod's name and the Secret's passwords in the environment.
      process.env.POD_NAME = "nats-0";
      for (const [k, v] of Object.entries(passwords())) process.env[k] = v;
      server = await startShippedNats(conf["nats.conf"]!, { "auth.conf": conf["auth.conf"]! });
    });

    afterAll(async () => {
      await server?.kill();
    });

    it("refuses an unauthenticated client and a wrong password, and lets the hub's user in", async () => {
      await expect(connect({ servers: server.url, reconnect: false })).rejects.toThrow(/authorization/i);
      await expect(
        connect({ servers: server.url, user: "hub", pass: "not-the-password", reconnect: false }),
      ).rejects.toThrow(/authorization/i);
      const nc = await connect({
        servers: server.url,
        user: "hub",
        pass: passwords().DATALAB_NATS_HUB_PASSWORD!,
        reconnect: false,
      });
      await nc.flush();
      await nc.close();
    });
  });

  it(
    "runs NATS with per-gateway credentials: auth.conf as in deploy/nats, " +
      "passwords from a Secret the hub reads its own from",
    () => {
      const conf = generated("nats-config").data!;
      expect(conf["nats.conf"]).toMatch(/^\s*include auth\.conf\s*$/m);
      // The set test/hostile-gateway.test.ts runs, not a copy drifting away from it.
      expect(conf["auth.conf"]).toBe(
        readFileSync(fileURLToPath(new URL("../nats/auth.conf", import.meta.url)), "utf8"),
      );
      const passwords = [...conf["auth.conf"]!.matchAll(/password: \$(\w+)/g)].map((m) => m[1]);
      expect(passwords.length).toBeGreaterThanOrEqual(2);
      expect(Object.keys(named("Secret", "datalab-nats-users")?.stringData ?? {}).sort()).toEqual(passwords.sort());
      expect(template(named("StatefulSet", "nats")!).spec.containers[0]!.envFrom).toContainEqual({
        secretRef: { name: "datalab-nats-users" },
      });
      expect(generated("datalab-hub").data?.DATALAB_NATS_USER).toBe("hub");
      expect(template(named("Deployment", "datalab-hub")!).spec.containers[0]!.env).toContainEqual({
        name: "DATALAB_NATS_PASSWORD",
        valueFrom: { secretKeyRef: { name: "datalab-nats-users", key: "DATALAB_NATS_HUB_PASSWORD" } },
      });
    },
  );

  it("points every Service at pods some workload makes", () => {
    const podLabels = workloads().map((w) => template(w).metadata.labels);
    for (const svc of byKind("Service")) {
      const selector = (svc.spec as { selector: Record<string, string> }).selector;
      expect(
        podLabels.some((l) => Object.entries(selector).every(([k, v]) => l[k] === v)),
        svc.metadata.name,
      ).toBe(true);
    }
  });
});
