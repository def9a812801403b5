import { connect } from "node:net";

export type Mode = "auto" | "always" | "never";

/** What the demo uses for one server, and why: printed in the banner. */
export interface Choice {
  embedded: boolean;
  why: string;
}

/** True when something accepts a TCP connection at the URL's host and port. */
export function answers(url: string, defaultPort: number, timeoutMs: number): Promise<boolean> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.resolve(false);
  }
  const host = u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1";
  return new Promise((resolve) => {
    const s = connect(Number(u.port || defaultPort), host);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

/**
 * Real server or embedded stand-in. A server "answers" when it accepts a connection; a
 * server that answers but then refuses (bad credentials, no JetStream) fails the start with
 * its own error rather than being silently replaced, so a misconfiguration is not hidden.
 */
export async function choose(
  mode: Mode,
  urls: readonly string[],
  defaultPort: number,
  timeoutMs: number,
  envName: string,
): Promise<Choice> {
  if (mode === "always") return { embedded: true, why: "DATALAB_DEMO_EMBEDDED=always" };
  const results = await Promise.all(urls.map((u) => answers(u, defaultPort, timeoutMs)));
  const i = results.indexOf(true);
  if (i >= 0) return { embedded: false, why: `answers at ${redact(urls[i]!)}` };
  if (mode === "never")
    throw new Error(`nothing answers at ${urls.map(redact).join(", ")} (${envName}) and DATALAB_DEMO_EMBEDDED=never`);
  return { embedded: true, why: `nothing answers at ${urls.map(redact).join(", ")} (${envName})` };
}

export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@/]+@/, "$1***@");
}

export function portOf(url: string, defaultPort: number): number {
  try {
    return Number(new URL(url).port || defaultPort);
  } catch {
    return defaultPort;
  }
}
