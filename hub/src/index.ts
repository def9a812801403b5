export { Hub, type HubDeps, type HubStatus } from "./hub";
export { hubFields, loadHubConfig, type HubConfig } from "./config";
export { createHubMetrics, type HubMetrics } from "./consume/metrics";
export { migrate, loadMigrations } from "./sinks/postgres-migrate";
export {
  DirectIntake,
  type DirectAck,
  type DirectDeadLetter,
  type DirectIntakeOptions,
} from "./consume/direct";
export { SinkConsumer, type ConsumerStatus, type ConsumerState } from "./consume/consumer";
export { durableName } from "./consume/durable";
export { listDeadLetters, replayDeadLetters, type DeadLetter } from "./consume/dead-letters";
export { hubStatus, type HubStatusReport } from "./consume/status";
export { PostgresSink } from "./sinks/postgres";
export { insertReadings } from "./sinks/postgres-readings";
export { createPgPool, createPostgresSink, createMongoSink } from "./sinks/index";
export { messageDocuments, messageId, type MessageDocument } from "./sinks/mongo-document";
export {
  SinkUnavailableError,
  SinkRejectedError,
  type Sink,
  type SinkBatch,
  type WriteResult,
} from "./sinks/types";
