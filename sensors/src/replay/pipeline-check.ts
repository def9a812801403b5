import mqtt, { type MqttClient } from "mqtt";
import { setTimeout as sleep } from "node:timers/promises";
import { redactUrl } from "@datalab/shared";

/**
 * What the replay can learn of the pipeline behind the broker, so that a row lost on the way
 * is an error rather than a silent gap: the gateway's committed readings (its /metrics) for
 * flow control and the end-of-run check, and the broker's own count of messages it dropped
 * (Mosquitto's `$SYS/broker/publish/messages/dropped`, e.g. beyond `max_queued_messages`).
 */

const COMMITTED = /^datalab_gateway_readings_committed_total(?:\{[^}]*\})?\s+([0-9.eE+]+)\s*$/m;

/** The gateway's count of readings committed to its outbox since it started, read from its /metrics. */
export class GatewayProgress {
  readonly url: string;

  constructor(
    base: string,
    private readonly token: string | undefined,
  ) {
    this.url = `${base.replace(/\/+$/, "")}/metrics`;
  }

  async committed(): Promise<number> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        signal: AbortSignal.timeout(5_000),
        ...(this.token ? { headers: { authorization: `Bearer ${this.token}` } } : {}),
      });
    } catch (err) {
      throw new Error(`the gateway's metrics at ${redactUrl(this.url)} cannot be read: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (res.status === 401)
      throw new Error(
        `the gateway at ${redactUrl(this.url)} asks for a token: set DATALAB_HTTP_TOKEN as for the gateway`,
      );
    if (!res.ok) throw new Error(`the gateway's metrics at ${redactUrl(this.url)} answered HTTP ${res.status}`);
    const m = COMMITTED.exec(await res.text());
    if (!m)
      throw new Error(
        `${redactUrl(this.url)} has no datalab_gateway_readings_committed_total: is it a DataLab gateway?`,
      );
    return Number(m[1]);
  }
}

/**
 * Flow control against the gateway: at most `window` messages published and not yet committed
 * by the gateway. The default stays well under a stock Mosquitto's 1,000 messages queued per
 * client, beyond which it drops QoS 1 messages for the gateway's session. The gateway's
 * commits are only visible over HTTP, so a full window polls its /metrics until it moves.
 */
export class GatewayFlow {
  private baseline = 0;
  private committedSeen = 0;

  constructor(
    readonly gateway: GatewayProgress,
    readonly window: number,
    private readonly pollMs = 20,
  ) {}

  async start(): Promise<void> {
    this.baseline = await this.gateway.committed();
    this.committedSeen = 0;
  }

  /** Readings the gateway committed since start (other sources' included). */
  async committedSinceStart(): Promise<number> {
    this.committedSeen = Math.max(this.committedSeen, (await this.gateway.committed()) - this.baseline);
    return this.committedSeen;
  }

  /** Waits until fewer than `window` messages are ahead of the gateway's commits. */
  async admit(messages: number, readings: number, signal?: AbortSignal): Promise<void> {
    const perMessage = messages > 0 ? readings / messages : 1;
    while (!signal?.aborted && (readings - this.committedSeen) / perMessage >= this.window) {
      const before = this.committedSeen;
      if ((await this.committedSinceStart()) === before)
        await sleep(this.pollMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /**
   * After the last publish: waits until the gateway has committed `readings` since start, or
   * until it has made no progress for `stallMs`. Returns what it committed.
   */
  async settle(readings: number, stallMs: number, signal?: AbortSignal): Promise<number> {
    let last = await this.committedSinceStart();
    let lastMove = performance.now();
    while (last < readings && !signal?.aborted && performance.now() - lastMove < stallMs) {
      await sleep(100, undefined, { signal }).catch(() => undefined);
      const now = await this.committedSinceStart();
      if (now !== last) lastMove = performance.now();
      last = now;
    }
    return last;
  }
}

const DROPPED = "$SYS/broker/publish/messages/dropped";
const UPTIME = "$SYS/broker/uptime";

/**
 * Mosquitto's count of PUBLISH messages it dropped (queue or in-flight limits), for any client,
 * from its `$SYS` tree, which it republishes every `sys_interval` (10 s by default). A broker
 * that publishes no `$SYS` (sys_interval 0, or not Mosquitto) gives undefined: unknown.
 */
export class BrokerDrops {
  /** The broker's count before the run, when it still had one retained (Mosquitto keeps it 60 s). */
  private baseline: number | undefined;
  /** The last value published while we watched: Mosquitto publishes it only when it changes. */
  private live: number | undefined;
  private ticks = 0;
  private readonly tickWaiters = new Set<() => void>();

  private constructor(private readonly client: MqttClient) {
    client.on("message", (topic, payload, packet) => {
      if (topic === DROPPED) {
        const n = Number(payload.toString()) || 0;
        if (packet.retain && this.live === undefined) this.baseline = n;
        else this.live = n;
      } else if (topic === UPTIME) {
        this.ticks += 1;
        for (const w of this.tickWaiters) w();
      }
    });
  }

  static async watch(url: string): Promise<BrokerDrops> {
    const client = mqtt.connect(url, {
      clientId: `datalab-replay-sys-${process.pid}-${Date.now().toString(36)}`,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    });
    client.on("error", () => undefined);
    const watch = new BrokerDrops(client);
    await client.subscribeAsync([DROPPED, UPTIME], { qos: 0 });
    // The retained values arrive right after the SUBACK; a round trip through the broker orders after them.
    await watch.roundTrip();
    return watch;
  }

  /** A message of our own through the broker: everything it sent us before has arrived. */
  private async roundTrip(): Promise<void> {
    const topic = `datalab/replay-sys/${process.pid}/${Date.now().toString(36)}`;
    await this.client.subscribeAsync(topic, { qos: 0 });
    const got = new Promise<void>((resolve) => this.client.on("message", (t) => t === topic && resolve()));
    await this.client.publishAsync(topic, "", { qos: 0 });
    await Promise.race([got, sleep(5_000)]);
    await this.client.unsubscribeAsync(topic);
  }

  /**
   * Messages the broker dropped since `watch`, counted at its next `$SYS` update (up to
   * `tickMs` away): `dropped` is exact when the count before the run was known, else it is the
   * broker's total (`total` true). Undefined when no update came.
   */
  async droppedSinceStart(tickMs = 15_000): Promise<{ dropped: number; total: boolean } | undefined> {
    const ticks = this.ticks;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.tickWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, tickMs);
      this.tickWaiters.add(done);
    });
    if (this.ticks === ticks) return undefined;
    // The dropped count of that update follows its uptime in the same burst.
    await this.roundTrip();
    if (this.live === undefined) return { dropped: 0, total: false };
    return this.baseline === undefined
      ? { dropped: this.live, total: true }
      : { dropped: this.live - this.baseline, total: false };
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
