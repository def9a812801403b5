/**
 * Replays real fixtures into the hub's sinks, batch by batch, as the consumer would hand
 * them over (no NATS: the notebooks test needs data, not the transport, and this keeps it
 * to a second or two). Every line becomes one wire message whose payload is the line itself,
 * so the raw-message join in MongoDB shows what was recorded.
 */
import { readFileSync } from "node:fs";
import { batchReadings, encodeBatch, type Batch, type WireMessage, type WireReading } from "@datalab/shared";
import type { Sink } from "@datalab/hub";

const BATCH_MESSAGES = 500;

/**
 * Suthaharan single-hop (TelosB motes): `reading,mote_id,indoor,humidity,temperature,label`.
 * The CSV has no clock; `reading` counts each mote's readings from 1, and the replay spaces
 * them 5 s apart from a fixed start.
 */
export const SINGLE_HOP_START = Date.UTC(2010, 6, 1, 6, 0, 0);
export const SINGLE_HOP_STEP_MS = 5_000;

function singleHopMessages(csv: string, nextSeq: () => number): WireMessage[] {
  const out: WireMessage[] = [];
  for (const line of csv.split("\n").slice(1)) {
    if (!line.trim()) continue;
    const [reading, mote, , humidity, temperature] = line.split(",");
    const ts = SINGLE_HOP_START + (Number(reading) - 1) * SINGLE_HOP_STEP_MS;
    const sensorId = `single-hop-mote-${mote}`;
    const readings: WireReading[] = [
      { seq: nextSeq(), sensorId, metric: "temperature", value: Number(temperature), unit: "Cel", ts },
      { seq: nextSeq(), sensorId, metric: "humidity", value: Number(humidity), unit: "%RH", ts },
    ];
    out.push({ source: "replay:suthaharan/single-hop.csv", receivedAt: ts, payload: line, encoding: "utf8", readings });
  }
  return out;
}

/** Intel Berkeley lab `data.txt` lines: `date time epoch moteid temperature humidity light voltage`. */
function intelLabMessages(text: string, nextSeq: () => number): WireMessage[] {
  const out: WireMessage[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const ts = Date.parse(`${f[0]}T${f[1]!.slice(0, 12)}Z`);
    const sensorId = `intel-lab-mote-${f[3]}`;
    const metrics: [string, number, string][] = [
      ["temperature", Number(f[4]), "Cel"],
      ["humidity", Number(f[5]), "%RH"],
      ["light", Number(f[6]), "lx"],
      ["battery", Number(f[7]), "V"],
    ];
    out.push({
      source: "replay:intel-lab/lines.txt",
      receivedAt: ts,
      payload: line,
      encoding: "utf8",
      readings: metrics.map(([metric, value, unit]) => ({ seq: nextSeq(), sensorId, metric, value, unit, ts })),
    });
  }
  return out;
}

async function writeAll(
  sinks: readonly Sink[],
  gatewayId: string,
  instance: string,
  messages: WireMessage[],
): Promise<number> {
  let readings = 0;
  for (let i = 0; i < messages.length; i += BATCH_MESSAGES) {
    const chunk = messages.slice(i, i + BATCH_MESSAGES);
    const seqs = chunk.flatMap((m) => m.readings.map((r) => r.seq));
    const batch: Batch = {
      v: 1,
      gatewayId,
      instance,
      firstSeq: seqs[0]!,
      lastSeq: seqs.at(-1)!,
      sentAt: chunk.at(-1)!.receivedAt,
      messages: chunk,
    };
    const sb = {
      gatewayId,
      batch,
      readings: batchReadings(batch, gatewayId),
      streamSeq: i / BATCH_MESSAGES + 1,
      bytes: encodeBatch(batch).byteLength,
    };
    for (const s of sinks) await s.write(sb);
    readings += sb.readings.length;
  }
  return readings;
}

/** Returns how many readings went into each sink. */
export async function replayFixtures(sinks: readonly Sink[], fixturesDir: string): Promise<number> {
  let seq = 0;
  const next = () => ++seq;
  let n = await writeAll(
    sinks,
    "replay-suthaharan",
    "single-hop-csv",
    singleHopMessages(readFileSync(`${fixturesDir}/suthaharan/single-hop.csv`, "utf8"), next),
  );
  seq = 0;
  n += await writeAll(
    sinks,
    "replay-intel-lab",
    "lines-txt",
    intelLabMessages(readFileSync(`${fixturesDir}/intel-lab/lines.txt`, "utf8"), next),
  );
  return n;
}
