export { createDataLab, type DataLab } from "./datalab";
export { dataLabFields, resolveApiToken, type DataLabConfig } from "./config";
export { createApiRoutes, type ApiOptions } from "./routes";
export { ApiAuth } from "./auth";
export { ApiError, parseTime, parseDurationMs } from "./params";
