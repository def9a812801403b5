export { replayFile, type ReplayOptions } from "./runner";
export { ReplaySummary } from "./summary";
export { RowMapper, parseMetricSpec, type MappingOptions, type MetricMapping, type ReplayRecord } from "./mapping";
export { parseTime, zoneMinutes } from "./time";
export { LineReader, MAX_LINE_BYTES, type FileLine } from "./lines";
export { problem, type LineProblem, type SkipReason } from "./formats/problems";
export * from "./formats/index";
