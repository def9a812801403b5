export { type FieldCounter, fieldCounter } from "./fields";
export { type CodecMetrics, codecMetrics } from "./frames";
export { createGatewayMetrics, type GatewayMetrics } from "./gateway-metrics";
