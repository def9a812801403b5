export {
  LiveFeed,
  createLiveMetrics as createLiveFeedMetrics,
  type LiveMetrics,
  type LiveOptions,
  type LiveReading,
} from "./feed";
export { LiveFanout, type LiveFanoutOptions } from "./fanout";
export { notifyOnWrite, type WrittenListener } from "./observe";
