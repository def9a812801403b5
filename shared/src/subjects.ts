/**
 * NATS subject and stream names. A prefix lets several DataLabs (or test runs) share one
 * NATS server without seeing each other's data.
 */
export interface Subjects {
  readonly prefix: string;
  readonly stream: string;
  /** The subject one gateway publishes its batches on. */
  readings(gatewayId: string): string;
  /** Every gateway's readings: the stream's subject filter. */
  readonly allReadings: string;
  /** Batches a sink gave up on, with the reason in headers. */
  deadLetter(sink: string): string;
  readonly allDeadLetters: string;
  readonly deadLetterStream: string;
  /** Core NATS (not stored): a gateway's periodic health report. */
  status(gatewayId: string): string;
  readonly allStatus: string;
  /** Core NATS (not stored): readings a hub committed, for every hub's live stream. */
  readonly live: string;
  /** Core NATS (not stored): hubs with a browser on their live feed say so here (hub/src/live/fanout.ts). */
  readonly liveWatching: string;
  /** The gateway id a readings subject names, or undefined if the subject is not one. */
  gatewayOf(subject: string): string | undefined;
}

/** Gateway ids become a NATS subject token: letters, digits, `-` and `_` only. */
export const GATEWAY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function subjects(prefix = "datalab"): Subjects {
  const streamBase = prefix.replace(/[^A-Za-z0-9_-]/g, "_").toUpperCase();
  const readingsPrefix = `${prefix}.readings.`;
  return Object.freeze({
    prefix,
    stream: `${streamBase}_READINGS`,
    readings: (gatewayId: string) => `${readingsPrefix}${gatewayId}`,
    allReadings: `${readingsPrefix}*`,
    deadLetter: (sink: string) => `${prefix}.deadletter.${sink}`,
    allDeadLetters: `${prefix}.deadletter.*`,
    deadLetterStream: `${streamBase}_DEADLETTER`,
    status: (gatewayId: string) => `${prefix}.status.${gatewayId}`,
    allStatus: `${prefix}.status.*`,
    live: `${prefix}.live`,
    liveWatching: `${prefix}.live.watching`,
    gatewayOf(subject: string) {
      const base = subject.startsWith(readingsPrefix)
        ? readingsPrefix
        : subject.startsWith(`${prefix}.status.`)
          ? `${prefix}.status.`
          : undefined;
      if (!base) return undefined;
      const id = subject.slice(base.length);
      return GATEWAY_ID_PATTERN.test(id) ? id : undefined;
    },
  });
}
