import { errorMessage } from "@datalab/shared";
import type { UplinkProblem } from "./types";

/**
 * Turn what the NATS client reports into a sentence an operator can act on, with a label
 * for the status. The client's own messages ("Authorization Violation", "no responders")
 * are kept at the end, so a search for them still finds the line.
 */
export function describeNatsError(err: unknown): { problem: UplinkProblem; message: string } {
  const chain: unknown[] = [];
  for (let e: unknown = err; e && chain.length < 5; e = (e as { cause?: unknown }).cause) chain.push(e);
  const names = chain.map((e) => (e as { name?: string }).name ?? "").join(" ");
  const text = chain.map((e) => errorMessage(e)).join(" | ");
  const raw = errorMessage(err);
  const lower = text.toLowerCase();
  if (
    names.includes("AuthorizationError") ||
    lower.includes("authorization violation") ||
    lower.includes("authentication")
  ) {
    return {
      problem: "authorization",
      message:
        "NATS refused this gateway's credentials (check DATALAB_NATS_USER/_PASSWORD(_FILE), _TOKEN(_FILE), _CREDS or _NKEY_SEED_FILE; readings stay in the outbox): " +
        raw,
    };
  }
  if (names.includes("PermissionViolationError") || lower.includes("permissions violation")) {
    // The client's error names what was refused; the message text says it too, for errors that lost their fields.
    const violation = chain.find((e) => typeof (e as { subject?: unknown }).subject === "string") as
      | { subject: string }
      | undefined;
    const refused = violation?.subject ?? /violation for \w+ to "([^"]+)"/i.exec(text)?.[1];
    if (refused?.startsWith("$JS.API.")) {
      return {
        problem: "permission",
        message:
          `NATS does not let this gateway's user call the JetStream API (${refused}); the gateway asks it only to check or create the readings stream ` +
          `(DATALAB_NATS_ENSURE_STREAM). With the minimal permissions the hub creates the stream: set DATALAB_NATS_ENSURE_STREAM=false, or allow it. ` +
          `Publishing readings does not need it: ${text}`,
      };
    }
    const subscribe = /subscription to/i.test(text);
    return {
      problem: "permission",
      message: subscribe
        ? `NATS does not let this gateway's user subscribe to its reply inbox (JetStream acknowledgements arrive under DATALAB_NATS_INBOX_PREFIX, default _INBOX_<gateway id>: allow subscribe on "<prefix>.>"): ${text}`
        : `NATS does not let this gateway's user publish to its readings subject (the server's permissions must allow it): ${text}`,
    };
  }
  if (names.includes("NoResponders") || lower.includes("no responders") || lower.includes("503")) {
    return {
      problem: "no_stream",
      message: `no JetStream stream takes this gateway's subject (start the hub, or create the stream): ${raw}`,
    };
  }
  if (/certificate|tls|ssl|self.signed|unable to verify/i.test(text)) {
    return {
      problem: "tls",
      message: `TLS with the NATS server failed (check DATALAB_NATS_TLS_CA/_CERT/_KEY): ${text}`,
    };
  }
  if (names.includes("TimeoutError") || lower.includes("timeout"))
    return { problem: "timeout", message: `NATS did not answer in time: ${raw}` };
  if (/econnrefused|ehostunreach|enotfound|etimedout|connection refused|closed|disconnect/i.test(text)) {
    return { problem: "unreachable", message: `NATS server unreachable: ${raw}` };
  }
  return { problem: "other", message: raw };
}
