/** A place readings come from (MQTT, a serial radio, rtl_433). One interface, one factory. */
export interface Source {
  readonly name: string;
  start(): Promise<void>;
  /** Stop taking input. Messages already received are handed to ingest before it resolves. */
  stop(): Promise<void>;
  status(): SourceStatus;
}

export interface SourceStatus {
  name: string;
  state: "starting" | "connected" | "disconnected" | "stopped";
  lastError?: string | undefined;
  /** A setting that puts data at risk, said wherever status is shown. */
  warning?: string | undefined;
  /**
   * MQTT: the broker confirmed the subscriptions on this connection. Until then nothing is
   * delivered to a new session, and what is published meanwhile never reaches it.
   */
  subscribed?: boolean | undefined;
}
