export { Gateway, type GatewayDeps, type GatewayStatus } from "./gateway";
export { gatewayFields, loadGatewayConfig, type GatewayConfig } from "./config";
export { createGatewayMetrics, type GatewayMetrics } from "./metrics";
export { Outbox } from "./outbox/store";
export { decodeJsonPayload } from "./decode/index";
export type { Uplink, UplinkStatus, PubAck } from "./uplink/types";
