import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export { Counter, Gauge, Histogram, Registry };

/**
 * Each component owns its registry (never prom-client's global one), so a gateway and a hub
 * can share a process (the demo, the tests) without their metrics colliding.
 */
export function createRegistry(component: string, withDefaults = true, lagSamplingMs = 100): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  // Event-loop lag sampled every `lagSamplingMs` rather than prom-client's 10 ms: the
  // sampling timer wakes the process, and on an idle Pi those wake-ups dominate its CPU.
  if (withDefaults)
    collectDefaultMetrics({
      register: registry,
      prefix: `datalab_${component}_`,
      eventLoopMonitoringPrecision: lagSamplingMs,
    });
  return registry;
}

/** The current value of a counter or gauge (summed over labels unless given). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  let sum = 0;
  for (const v of data.values) {
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}
