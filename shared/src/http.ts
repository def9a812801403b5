import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "pino";

export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

export interface HttpOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** `/healthz`: `ok` false answers 503, so orchestrators restart or route around it. */
  health: () => { ok: boolean; [k: string]: unknown } | Promise<{ ok: boolean; [k: string]: unknown }>;
  routes?: Record<string, Route>;
  /** Called for paths no route matches (e.g. a dashboard's static files). */
  fallback?: Route;
  /**
   * When set, every path but `/healthz` answers 401 unless this returns true, and `/healthz`
   * answers such a request with `ok` alone (liveness probes need no token; details do).
   */
  authorized?: (req: IncomingMessage) => boolean;
  logger: Logger;
}

export interface HttpServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(text);
}

/** `/healthz` and `/metrics`, plus whatever routes a component adds. Port 0 picks a free one. */
export async function startHttp(opts: HttpOptions): Promise<HttpServer> {
  const routes: Record<string, Route> = {
    "/healthz": async (req, res) => {
      const h = await opts.health();
      sendJson(res, h.ok ? 200 : 503, !opts.authorized || opts.authorized(req) ? h : { ok: h.ok });
    },
    "/metrics": async (_req, res) => {
      const body = await opts.registry.metrics();
      res.writeHead(200, { "content-type": opts.registry.contentType });
      res.end(body);
    },
    ...opts.routes,
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const route = routes[url.pathname] ?? opts.fallback;
    if (opts.authorized && url.pathname !== "/healthz" && !opts.authorized(req)) {
      res.setHeader("www-authenticate", 'Bearer realm="datalab"');
      sendJson(res, 401, { error: "missing or wrong token: send `Authorization: Bearer <token>`" });
      return;
    }
    if (!route) {
      sendJson(res, 404, { error: `no such path: ${url.pathname}` });
      return;
    }
    Promise.resolve(route(req, res, url)).catch((err: unknown) => {
      opts.logger.error({ err, path: url.pathname }, "http handler failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
