export {
  checkPayload,
  Ingest,
  type IngestContext,
  type MessageDecoder,
  type PayloadLimits,
} from "./ingest";
export { validateReadings } from "./validate";
