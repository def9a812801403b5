import { describe, expect, it } from "vitest";
import { batchReadings, BatchError, decodeBatch, encodeWireMessage, isWireBatch, type Batch } from "../src/index";

const envelope = {
  v: 1 as const,
  gatewayId: "gw",
  instance: "abc123",
  firstSeq: 1,
  lastSeq: 2,
  sentAt: 1_764_270_000_000,
};

function batchOf(readings: string): Batch {
  return JSON.parse(
    '{"v":1,"gatewayId":"gw","instance":"abc123","firstSeq":1,"lastSeq":2,"sentAt":1764270000000,' +
      `"messages":[${readings}]}`,
  ) as Batch;
}

describe("the wire says whether a reading's time is the sensor's or the receive time (rxWindow)", () => {
  it(
    "the gateway writes rxWindow only on receipt-stamped readings; the hub reads it back, " +
      "and a batch without it (an older gateway) means sensor time",
    () => {
      const m = encodeWireMessage(
        {
          source: "mqtt:rtl_433/pi/events",
          receivedAt: 1_764_270_000_000,
          payload: "{}",
          encoding: "utf8",
          readings: [
            { sensorId: "s", metric: "temperature", value: 21.5, unit: "Cel", ts: 1_764_270_000_000, rxWindow: 2_000 },
            { sensorId: "s", metric: "humidity", value: 40, unit: "%RH", ts: 1_764_269_999_000 },
          ],
        },
        1,
      );
      expect(m).toContain(`"ts":1764270000000,"rxWindow":2000}`);
      expect(m).toContain(`"ts":1764269999000}`);
      const batch = decodeBatch(Buffer.from(JSON.stringify({ ...envelope, messages: [JSON.parse(m)] })));
      const [rx, sensor] = batchReadings(batch, "gw");
      expect(rx!.rxWindow).toBe(2_000);
      expect(sensor!.rxWindow).toBeUndefined();
      expect("rxWindow" in sensor!).toBe(false);
    },
  );

  it("a bad rxWindow is refused by the schema with the field named, after the fast check declined it", () => {
    const reading = (w: string) =>
      '{"source":"x","receivedAt":1,"payload":"","encoding":"utf8",' +
      `"readings":[{"seq":1,"sensorId":"s","metric":"m","value":1,"unit":null,"ts":1,"rxWindow":${w}}]}`;
    for (const w of ["-1", "1.5", "3600001", '"2000"']) {
      const b = batchOf(reading(w));
      expect(isWireBatch(b), w).toBe(false);
      expect(() => decodeBatch(Buffer.from(JSON.stringify(b))), w).toThrow(BatchError);
      expect(() => decodeBatch(Buffer.from(JSON.stringify(b)))).toThrow(/rxWindow/);
    }
    for (const w of ["0", "2000", "3600000"]) expect(isWireBatch(batchOf(reading(w))), w).toBe(true);
  });
});
