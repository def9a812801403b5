export { dataLabFields, resolveApiToken, type DataLabConfig } from "./config";
export { createApiRoutes, type ApiOptions } from "./routes";
export { ApiAuth } from "./auth";
export { ApiError, parseTime, parseDurationMs } from "../http/params";
