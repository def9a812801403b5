import {
  AuthorizationError,
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  InvalidArgumentError,
  NoRespondersError,
  PermissionViolationError,
  TimeoutError,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";
import { errorMessage, UplinkError, type UplinkErrorKind } from "@datalab/shared";

/** Node's codes for a certificate the TLS handshake refused (OpenSSL's verify codes, `ERR_TLS_*`, `ERR_SSL_*`). */
const TLS_CODE = /^ERR_(TLS|SSL)_|CERT|SELF_SIGNED|^UNABLE_TO_|^INVALID_CA$|HOSTNAME_MISMATCH/;
/** Node's codes for a server that cannot be reached. */
const NETWORK_CODE = /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|ETIMEDOUT|EPIPE|EAI_AGAIN)$/;

/**
 * The error and its causes, outermost first (the client wraps: a RequestError holds the
 * PermissionViolationError or NoRespondersError). An error that lost its class, a server's
 * -ERR passed on as text, is parsed the way the client parses the server's errors.
 */
function chainOf(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err; e !== undefined && e !== null && chain.length < 8; e = (e as { cause?: unknown }).cause) {
    chain.push(e);
    if (e instanceof AuthorizationError || e instanceof PermissionViolationError) continue;
    const text = errorMessage(e);
    const parsed =
      PermissionViolationError.parse(text) ??
      UserAuthenticationExpiredError.parse(text) ??
      AuthorizationError.parse(text);
    if (parsed) chain.push(parsed);
  }
  return chain;
}

function code(e: unknown): string {
  const c = (e as { code?: unknown } | undefined)?.code;
  return typeof c === "string" ? c : "";
}

/** The client's own connection errors about TLS carry no code: their text is all there is. */
function isTls(e: unknown): boolean {
  if (TLS_CODE.test(code(e))) return true;
  return (e instanceof ConnectionError || e instanceof InvalidArgumentError) && /\btls\b/i.test(e.message);
}

function kindOf(chain: readonly unknown[]): UplinkErrorKind {
  const some = (test: (e: unknown) => boolean) => chain.some(test);
  if (some((e) => e instanceof AuthorizationError || e instanceof UserAuthenticationExpiredError)) {
    return "authorization";
  }
  if (some((e) => e instanceof PermissionViolationError)) return "permission";
  if (some((e) => e instanceof NoRespondersError)) return "no_stream";
  if (some(isTls)) return "tls";
  if (some((e) => e instanceof TimeoutError)) return "timeout";
  const unreachable = (e: unknown) =>
    e instanceof ConnectionError ||
    e instanceof ClosedConnectionError ||
    e instanceof DrainingConnectionError ||
    NETWORK_CODE.test(code(e));
  return some(unreachable) ? "unreachable" : "other";
}

/** A permission refused to this gateway's user, in words that name the setting to change. */
function permissionSentence(violation: PermissionViolationError | undefined, text: string): string {
  const refused = violation?.subject ?? "";
  if (refused.startsWith("$JS.API.")) {
    return (
      `NATS does not let this gateway's user call the JetStream API (${refused}); the gateway asks it only ` +
      "to check or create the readings stream (DATALAB_NATS_ENSURE_STREAM). With the minimal permissions " +
      "the hub creates the stream: set DATALAB_NATS_ENSURE_STREAM=false, or allow it. " +
      `Publishing readings does not need it: ${text}`
    );
  }
  if (violation?.operation === "subscription") {
    return (
      "NATS does not let this gateway's user subscribe to its reply inbox (JetStream acknowledgements " +
      "arrive under DATALAB_NATS_INBOX_PREFIX, default _INBOX_<gateway id>: " +
      `allow subscribe on "<prefix>.>"): ${text}`
    );
  }
  return (
    "NATS does not let this gateway's user publish to its readings subject " +
    `(the server's permissions must allow it): ${text}`
  );
}

/**
 * Classify what the NATS client reported, once, where it enters the uplink: by the client's
 * own error classes (and Node's codes for TLS and network failures), into an UplinkError
 * whose `kind` everything after reads and whose message an operator can act on. The
 * client's own words ("Authorization Violation", "no responders") are kept at the end, so
 * a search for them still finds the line.
 */
export function classifyNatsError(err: unknown): UplinkError {
  if (err instanceof UplinkError) return err;
  const chain = chainOf(err);
  const kind = kindOf(chain);
  const raw = errorMessage(err);
  const text = [...new Set(chain.map((e) => errorMessage(e)))].join(" | ");
  let message: string;
  switch (kind) {
    case "authorization":
      message =
        "NATS refused this gateway's credentials (check DATALAB_NATS_USER/_PASSWORD(_FILE), _TOKEN(_FILE), " +
        `_CREDS or _NKEY_SEED_FILE; readings stay in the outbox): ${raw}`;
      break;
    case "permission":
      message = permissionSentence(
        chain.find((e): e is PermissionViolationError => e instanceof PermissionViolationError),
        text,
      );
      break;
    case "no_stream":
      message = `no JetStream stream takes this gateway's subject (start the hub, or create the stream): ${raw}`;
      break;
    case "tls":
      message = `TLS with the NATS server failed (check DATALAB_NATS_TLS_CA/_CERT/_KEY): ${text}`;
      break;
    case "timeout":
      message = `NATS did not answer in time: ${raw}`;
      break;
    case "unreachable":
      message = `NATS server unreachable: ${raw}`;
      break;
    default:
      message = raw;
  }
  return new UplinkError(message, { cause: err, kind });
}
