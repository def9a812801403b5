/**
 * The Kubernetes manifests, checked without a cluster: every document parses, every object
 * has the fields the API server requires, workloads carry images, probes and resources, and
 * the names they refer to (Services, ConfigMaps, Secrets, the HPA's target) exist.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

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
  spec: { containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[]; securityContext?: Obj };
}

function load(): { file: string; obj: K8sObject }[] {
  const out: { file: string; obj: K8sObject }[] = [];
  for (const file of readdirSync(K8S).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")) {
    for (const doc of parseAllDocuments(readFileSync(join(K8S, file), "utf8"))) {
      expect(doc.errors, `${file}: YAML errors`).toEqual([]);
      const obj = doc.toJS() as K8sObject | null;
      if (obj) out.push({ file, obj });
    }
  }
  return out;
}

const objects = load();
const byKind = (kind: string) => objects.map((o) => o.obj).filter((o) => o.kind === kind);
const named = (kind: string, name: string) => byKind(kind).find((o) => o.metadata.name === name);
const workloads = () => [...byKind("Deployment"), ...byKind("StatefulSet")];
const template = (w: K8sObject) => (w.spec as { template: PodTemplate }).template;

describe("deploy/k8s manifests", () => {
  it("parse, and every object names its apiVersion, kind and metadata.name in the datalab namespace", () => {
    expect(objects.length).toBeGreaterThanOrEqual(10);
    for (const { file, obj } of objects) {
      const where = `${file}: ${obj.kind}/${obj.metadata?.name}`;
      expect(obj.apiVersion, where).toMatch(/^([a-z.]+\/)?v\d+(beta\d+)?$/);
      expect(obj.kind, where).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(obj.metadata?.name, where).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (obj.kind !== "Namespace") expect(obj.metadata.namespace, where).toBe("datalab");
      if (!["ConfigMap", "Secret", "Namespace"].includes(obj.kind)) expect(obj.spec, `${where}: spec`).toBeTypeOf("object");
    }
  });

  it("lists every file in the kustomization", () => {
    const k = parse(readFileSync(join(K8S, "kustomization.yaml"), "utf8")) as { resources: string[] };
    expect([...k.resources].sort()).toEqual([...new Set(objects.map((o) => o.file))].sort());
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
          if (typeof port === "string") expect(c.ports?.map((p) => p.name), where).toContain(port);
        }
        expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
        expect(c.securityContext?.readOnlyRootFilesystem, where).toBe(true);
      }
    }
  });

  it("runs the hub horizontally: two or more replicas, an HPA on it, probes on /healthz, config from a ConfigMap and a Secret", () => {
    const hub = named("Deployment", "datalab-hub")!;
    expect((hub.spec as { replicas: number }).replicas).toBeGreaterThanOrEqual(2);
    const c = template(hub).spec.containers[0]!;
    expect(c.readinessProbe?.httpGet?.path).toBe("/healthz");
    expect(c.livenessProbe?.httpGet?.path).toBe("/healthz");
    for (const ref of c.envFrom ?? []) {
      if (ref.configMapRef) expect(named("ConfigMap", ref.configMapRef.name), ref.configMapRef.name).toBeDefined();
      if (ref.secretRef) expect(named("Secret", ref.secretRef.name), ref.secretRef.name).toBeDefined();
    }
    expect(c.envFrom?.map((r) => Object.keys(r)[0]).sort()).toEqual(["configMapRef", "secretRef"]);
    const secret = named("Secret", "datalab-hub")!;
    expect(Object.keys(secret.stringData ?? {})).toEqual(expect.arrayContaining(["DATALAB_PG_URL", "DATALAB_MONGO_URL"]));
    // Beyond loopback the hub starts only with a token (16+ characters): the Secret carries one.
    expect(named("ConfigMap", "datalab-hub")!.data?.DATALAB_HTTP_HOST).toBe("0.0.0.0");
    expect(secret.stringData?.DATALAB_API_TOKEN?.length).toBeGreaterThanOrEqual(16);
    const hpa = named("HorizontalPodAutoscaler", "datalab-hub")!;
    expect(hpa.spec).toMatchObject({ scaleTargetRef: { kind: "Deployment", name: "datalab-hub" } });
    expect((hpa.spec as { minReplicas: number }).minReplicas).toBeGreaterThanOrEqual(2);
    // Streams replicated on all three NATS servers.
    expect(named("ConfigMap", "datalab-hub")!.data?.DATALAB_STREAM_REPLICAS).toBe("3");
  });

  it("runs NATS as a JetStream cluster of three with stable names and a volume each", () => {
    const nats = named("StatefulSet", "nats")!;
    const spec = nats.spec as { replicas: number; serviceName: string; volumeClaimTemplates: { metadata: { name: string } }[] };
    expect(spec.replicas).toBe(3);
    const headless = named("Service", spec.serviceName)!;
    expect((headless.spec as { clusterIP: string }).clusterIP).toBe("None");
    expect(spec.volumeClaimTemplates.map((v) => v.metadata.name)).toContain("data");
    const conf = named("ConfigMap", "nats-config")!.data!["nats.conf"]!;
    expect(conf).toMatch(/jetstream\s*\{/);
    const routes = [...conf.matchAll(/nats:\/\/(nats-\d)\.([a-z-]+)\.datalab\.svc\.cluster\.local:6222/g)];
    expect(routes.map((m) => m[1])).toEqual(["nats-0", "nats-1", "nats-2"]);
    for (const m of routes) expect(m[2]).toBe(spec.serviceName);
    // The hub reaches every member.
    const urls = named("ConfigMap", "datalab-hub")!.data!.DATALAB_NATS_URL!.split(",");
    expect(urls).toHaveLength(3);
    for (const v of template(nats).spec.volumes ?? []) if (v.configMap) expect(named("ConfigMap", v.configMap.name)).toBeDefined();
  });

  it("runs NATS with per-gateway credentials: auth.conf as in deploy/nats, passwords from a Secret the hub reads its own from", () => {
    const conf = named("ConfigMap", "nats-config")!.data!;
    expect(conf["nats.conf"]).toMatch(/^\s*include auth\.conf\s*$/m);
    // The set test/hostile-gateway.test.ts runs, not a copy drifting away from it.
    expect(conf["auth.conf"]).toBe(readFileSync(fileURLToPath(new URL("../nats/auth.conf", import.meta.url)), "utf8"));
    const passwords = [...conf["auth.conf"]!.matchAll(/password: \$(\w+)/g)].map((m) => m[1]);
    expect(passwords.length).toBeGreaterThanOrEqual(2);
    expect(Object.keys(named("Secret", "datalab-nats-users")?.stringData ?? {}).sort()).toEqual(passwords.sort());
    expect(template(named("StatefulSet", "nats")!).spec.containers[0]!.envFrom).toContainEqual({ secretRef: { name: "datalab-nats-users" } });
    expect(named("ConfigMap", "datalab-hub")!.data?.DATALAB_NATS_USER).toBe("hub");
    expect(template(named("Deployment", "datalab-hub")!).spec.containers[0]!.env).toContainEqual({
      name: "DATALAB_NATS_PASSWORD",
      valueFrom: { secretKeyRef: { name: "datalab-nats-users", key: "DATALAB_NATS_HUB_PASSWORD" } },
    });
  });

  it("points every Service at pods some workload makes", () => {
    const podLabels = workloads().map((w) => template(w).metadata.labels);
    for (const svc of byKind("Service")) {
      const selector = (svc.spec as { selector: Record<string, string> }).selector;
      expect(podLabels.some((l) => Object.entries(selector).every(([k, v]) => l[k] === v)), svc.metadata.name).toBe(true);
    }
  });
});
