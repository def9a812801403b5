import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { z } from "zod";
import { ConfigError } from "./errors";

/** A bearer token from the environment or a config file: long enough that guessing it is hopeless. */
export const tokenSchema = z
  .string()
  .min(16, "expected at least 16 characters (a random token, e.g. `openssl rand -hex 24`)");

/** The token in `path` (a mounted secret), read at start so a bad path or a short token stops the program. */
export function readTokenFile(envName: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new ConfigError([`${envName}=${JSON.stringify(path)}: cannot read it: ${(err as Error).message}`]);
  }
  if (text.length < 16)
    throw new ConfigError([`${envName}=${JSON.stringify(path)}: the token in it is shorter than 16 characters`]);
  return text;
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Checks `Authorization: Bearer <token>` without leaking the token's length or content through timing. */
export class BearerToken {
  private readonly expected: Buffer;

  constructor(token: string) {
    this.expected = digest(token);
  }

  /** True when `candidate` is the token. Digests have equal length, so timingSafeEqual never throws. */
  equals(candidate: string): boolean {
    return timingSafeEqual(digest(candidate), this.expected);
  }

  /** True when the request carries the token in its Authorization header. */
  matches(req: IncomingMessage): boolean {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    return m !== null && this.equals(m[1]!);
  }
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost" || h === "::1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/**
 * Secure by default: a port reachable from other machines must ask for a token. Throws a
 * ConfigError naming the variables when `host` is not loopback and no token is configured.
 */
export function requireTokenBeyondLoopback(
  host: string,
  token: string | undefined,
  names: { host: string; token: string; what: string },
): void {
  if (token !== undefined || isLoopbackHost(host)) return;
  throw new ConfigError([
    `${names.host}=${JSON.stringify(host)} serves ${names.what} to other machines, but ${names.token} is not set: ` +
      `set ${names.token} (or ${names.token}_FILE) to a random token of 16+ characters (openssl rand -hex 24), ` +
      "or listen on 127.0.0.1 (see docs/security.md)",
  ]);
}

/**
 * The client's address for per-client limits: IPv4 as is (also when mapped into IPv6), IPv6
 * by its /64, since one host or home router usually holds a whole /64.
 */
export function clientKey(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? "unknown";
  if (a.startsWith("::ffff:") && isIP(a.slice(7)) === 4) return a.slice(7);
  if (isIP(a) !== 6) return a;
  return `${expandIpv6(a).slice(0, 4).join(":")}::/64`;
}

function expandIpv6(a: string): string[] {
  const [head, tail] = a.split("::") as [string, string | undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right].map((g) => g.replace(/^0+(?=.)/, ""));
}

/**
 * Failed attempts per client in a fixed window (e.g. wrong tokens at /login). Bounded: at most
 * `maxClients` are tracked; past that the oldest entry goes, so a flood of addresses costs a
 * fixed amount of memory (and at worst lets one forgotten client start its window afresh).
 */
export class AttemptLimiter {
  private readonly windows = new Map<string, { start: number; failures: number }>();
  private readonly now: () => number;

  constructor(private readonly o: { maxFailures: number; windowMs: number; maxClients?: number; now?: () => number }) {
    this.now = o.now ?? Date.now;
  }

  /** Seconds until `key` may try again; 0 when it may try now. */
  retryAfterSeconds(key: string): number {
    const w = this.windows.get(key);
    if (!w) return 0;
    const left = w.start + this.o.windowMs - this.now();
    if (left <= 0) {
      this.windows.delete(key);
      return 0;
    }
    return w.failures >= this.o.maxFailures ? Math.ceil(left / 1_000) : 0;
  }

  fail(key: string): void {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || t - w.start >= this.o.windowMs) {
      this.windows.delete(key);
      w = { start: t, failures: 0 };
      this.windows.set(key, w);
      const max = this.o.maxClients ?? 10_000;
      if (this.windows.size > max) this.windows.delete(this.windows.keys().next().value!);
    }
    w.failures += 1;
  }

  get size(): number {
    return this.windows.size;
  }
}
