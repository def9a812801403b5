import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { AttemptLimiter, BearerToken, clientKey, Counter, sendJson, type Registry, type Route } from "@datalab/shared";

export const SESSION_COOKIE = "datalab_session";
/** A login form posts a token of at most a few hundred bytes; anything larger is refused unread. */
const MAX_LOGIN_BODY = 4_096;

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export interface LoginLimits {
  /** Wrong tokens one client address may post per window before it gets 429. */
  maxFailures: number;
  windowMs?: number;
  registry?: Registry;
  now?: () => number;
}

/**
 * Optional bearer-token auth. Programs send `Authorization: Bearer <token>`; a browser cannot
 * put a header on a page load or an EventSource, so the dashboard's login form trades the
 * token for an HttpOnly cookie holding a hash of it (the cookie is not the token itself).
 */
export class ApiAuth {
  private readonly token: BearerToken | undefined;
  private readonly session: string | undefined;
  private readonly limiter: AttemptLimiter;
  private readonly loginFailures: Counter<"result"> | undefined;

  constructor(token: string | undefined, limits: LoginLimits = { maxFailures: 10 }) {
    this.token = token ? new BearerToken(token) : undefined;
    this.session = token ? digest(`datalab-session\0${token}`).toString("hex") : undefined;
    this.limiter = new AttemptLimiter({
      maxFailures: limits.maxFailures,
      windowMs: limits.windowMs ?? 60_000,
      ...(limits.now ? { now: limits.now } : {}),
    });
    this.loginFailures = limits.registry
      ? new Counter({
          name: "datalab_hub_login_refused_total",
          help:
            "POST /login attempts refused: wrong_token, " +
            "or rate_limited (over DATALAB_LOGIN_MAX_FAILURES per address per minute)",
          labelNames: ["result"],
          registers: [limits.registry],
        })
      : undefined;
  }

  get enabled(): boolean {
    return this.token !== undefined;
  }

  /** True when auth is off or the request carries the token (header) or the session cookie. */
  allows(req: IncomingMessage): boolean {
    if (!this.token || !this.session) return true;
    if (this.token.matches(req)) return true;
    const cookie = readCookie(req, SESSION_COOKIE);
    // Compare digests: equal length always, so timingSafeEqual never throws and leaks no length.
    return cookie !== undefined && timingSafeEqual(digest(cookie), digest(this.session));
  }

  /** Wrap a JSON route: 401 with a JSON body saying what is missing. */
  json(route: Route): Route {
    if (!this.enabled) return route;
    return (req, res, url) => {
      if (this.allows(req)) return route(req, res, url);
      res.setHeader("www-authenticate", 'Bearer realm="datalab"');
      sendJson(res, 401, { error: "missing or wrong token: send `Authorization: Bearer <DATALAB_API_TOKEN>`" });
    };
  }

  /** Wrap a page or static file: 401 with the login form for a browser. */
  page(route: Route): Route {
    if (!this.enabled) return route;
    return (req, res, url) => {
      if (this.allows(req)) return route(req, res, url);
      sendLoginPage(res, 401, url.pathname === "/" ? undefined : "Log in to see this page.");
    };
  }

  /** `GET /login` shows the form; `POST /login` (form field `token`) sets the session cookie. */
  readonly login: Route = async (req, res) => {
    if (req.method === "GET" || req.method === "HEAD") {
      sendLoginPage(res, 200);
      return;
    }
    if (req.method !== "POST") {
      res.writeHead(405, { allow: "GET, POST" }).end();
      return;
    }
    if (!this.session || !this.token) {
      res.writeHead(303, { location: "/" }).end();
      return;
    }
    // Checked before the body is read: a client over its limit costs no hashing.
    const client = clientKey(req);
    const wait = this.limiter.retryAfterSeconds(client);
    if (wait > 0) {
      this.loginFailures?.inc({ result: "rate_limited" });
      res.setHeader("retry-after", String(wait));
      res.setHeader("connection", "close");
      sendLoginPage(res, 429, `Too many wrong tokens from your address: try again in ${wait} s.`);
      return;
    }
    const body = await readBody(req, MAX_LOGIN_BODY);
    if (body === undefined) {
      sendJson(res, 413, { error: `login form larger than ${MAX_LOGIN_BODY} bytes` });
      return;
    }
    const token = new URLSearchParams(body).get("token")?.trim() ?? "";
    if (!this.token.equals(token)) {
      this.limiter.fail(client);
      this.loginFailures?.inc({ result: "wrong_token" });
      sendLoginPage(res, 401, "That token is not the one this hub was given (DATALAB_API_TOKEN).");
      return;
    }
    res.writeHead(303, {
      location: "/",
      "set-cookie": `${SESSION_COOKIE}=${this.session}; HttpOnly; SameSite=Strict; Path=/`,
      "cache-control": "no-store",
    });
    res.end();
  };
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The body as text, or undefined (and the request drained) when it is larger than `max`. */
async function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function sendLoginPage(res: ServerResponse, status: number, message?: string): void {
  const note = message ? `<p class="note">${escapeHtml(message)}</p>` : "";
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>DataLab · log in</title>
<style>
body{font:15px system-ui,sans-serif;background:#f4f5f7;color:#1d2330;
display:grid;place-items:center;min-height:90vh;margin:0}
form{background:#fff;padding:24px 28px;border-radius:8px;box-shadow:0 1px 4px #0002;min-width:320px}
h1{font-size:18px;margin:0 0 12px}input{width:100%;box-sizing:border-box;padding:8px;margin:8px 0 14px;font:inherit}
button{padding:8px 16px;font:inherit}.note{color:#a33}
</style></head>
<body><form method="post" action="/login">
<h1>Wireless Sensor DataLab</h1>${note}
<label>API token (DATALAB_API_TOKEN)<input type="password" name="token"
autocomplete="current-password" autofocus required></label>
<button type="submit">Log in</button>
</form></body></html>`;
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(html);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
