export { LiveFeed, createLiveMetrics as createLiveFeedMetrics, type LiveMetrics, type LiveOptions, type LiveReading } from "./feed";
export { notifyOnWrite, observeSinks, type WrittenListener } from "./observe";
