export { Hub, type HubDeps } from "./hub";
export { hubFields, loadHubConfig, type HubConfig } from "./config";
export { createHubMetrics, type HubMetrics } from "./metrics";
export { migrate, loadMigrations } from "./migrate";
export { PostgresSink, insertReadings } from "./sinks/postgres";
export type { Sink, SinkBatch } from "./sinks/types";
