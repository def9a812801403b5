import { describe, expect, it } from "vitest";
import {
  decodeMySensors,
  MemoryControllerStorage,
  MySensorsController,
  MySensorsMessage,
  MySensorsParser,
  type ControllerStorage,
} from "../../src/protocols/index";
import { feed, fixture, framesOf, readingsOf } from "./helpers";

function msg(line: string): MySensorsMessage {
  const r = MySensorsMessage.fromLine(line);
  if (!r.ok) throw new Error(r.message);
  return r.frame;
}

const NOW = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const controller = (storage: ControllerStorage = new MemoryControllerStorage(), extra = {}) =>
  new MySensorsController({ storage, now: () => NOW, ...extra });

describe("MySensorsController: node ids", () => {
  it("answers I_ID_REQUEST with I_ID_RESPONSE and the next free id", () => {
    const c = controller();
    const first = c.handle(msg("255;255;3;0;3;"));
    expect(first.replies).toEqual(["255;255;3;0;4;1\n"]);
    expect(first.metadata).toMatchObject({ nodeId: 1, assignedAt: NOW });
    expect(c.handle(msg("255;255;3;0;3;")).replies).toEqual(["255;255;3;0;4;2\n"]);
  });

  it("persists assignments across controller instances sharing storage", () => {
    const storage = new MemoryControllerStorage();
    expect(controller(storage).handle(msg("255;255;3;0;3;")).replies).toEqual(["255;255;3;0;4;1\n"]);
    expect(controller(storage).handle(msg("255;255;3;0;3;")).replies).toEqual(["255;255;3;0;4;2\n"]);
    const third = controller(storage);
    expect(third.node(1)).toMatchObject({ nodeId: 1, assignedAt: NOW });
    expect(third.handle(msg("255;255;3;0;3;")).replies).toEqual(["255;255;3;0;4;3\n"]);
  });

  it("skips ids of nodes seen with static ids, and of corrupt records", () => {
    const storage = new MemoryControllerStorage();
    const c = controller(storage);
    c.handle(msg("1;255;3;0;11;Static")); // node 1 is in use without asking
    storage.set("mysensors/node/2", "{not json");
    expect(controller(storage).handle(msg("255;255;3;0;3;")).replies).toEqual(["255;255;3;0;4;3\n"]);
  });

  it("never hands out the id of a node that only sends readings, presented or not, and remembers it", () => {
    const storage = new MemoryControllerStorage();
    const c = controller(storage);
    const given: number[] = [];
    for (let i = 0; i < 60; i++) {
      // Node 46 keeps sending without ever presenting, between every ID request.
      c.handle(msg("46;1;1;0;0;21.5"));
      const reply = c.handle(msg("255;255;3;0;3;")).replies[0];
      given.push(Number(reply?.trim().split(";")[5]));
    }
    expect(given).toHaveLength(60);
    expect(given).not.toContain(46);
    expect(given).toEqual([
      ...Array.from({ length: 45 }, (_, i) => i + 1),
      ...Array.from({ length: 15 }, (_, i) => i + 47),
    ]);
    expect(c.node(46)).toMatchObject({ nodeId: 46, firstSeenAt: NOW });
    expect(c.node(46)?.assignedAt).toBeUndefined();
    // A restarted controller over the same storage still knows 46 is taken.
    const next = controller(storage);
    for (let id = 62; id <= 254; id++)
      expect(next.handle(msg("255;255;3;0;3;")).replies).toEqual([`255;255;3;0;4;${id}\n`]);
    expect(next.handle(msg("255;255;3;0;3;")).warning).toMatch(/no free/);
  });

  it("claims an id heard once, without a reply and without writing it again", () => {
    const storage = new MemoryControllerStorage();
    const c = controller(storage);
    const first = c.handle(msg("46;1;1;0;0;21.5"));
    expect(first).toMatchObject({ replies: [], metadata: { nodeId: 46 } });
    expect(c.handle(msg("46;1;1;0;0;21.6")).metadata).toBeUndefined();
    expect(storage.keys()).toEqual(["mysensors/node/46"]);
    // The gateway (0) and the unassigned id (255) are never nodes.
    c.handle(msg("0;255;3;0;14;Gateway startup complete."));
    c.handle(msg("255;255;3;0;3;"));
    expect(storage.keys()).not.toContain("mysensors/node/0");
    expect(storage.keys()).not.toContain("mysensors/node/255");
  });

  it("stops answering, with a warning, when 1..254 are all taken", () => {
    const storage = new MemoryControllerStorage();
    for (let id = 1; id <= 254; id++) storage.set(`mysensors/node/${id}`, "{}");
    const result = controller(storage).handle(msg("255;255;3;0;3;"));
    expect(result.replies).toEqual([]);
    expect(result.warning).toMatch(/no free/);
  });
});

describe("MySensorsController: time and config", () => {
  it("answers I_TIME with the injected clock in seconds", () => {
    expect(controller().handle(msg("5;255;3;0;1;")).replies).toEqual([`5;255;3;0;1;${Math.floor(NOW / 1000)}\n`]);
  });

  it("answers I_TIME in local wall-clock seconds when asked to (pymysensors habit)", () => {
    const reply = controller(undefined, { nodeTime: "local" }).handle(msg("5;255;3;0;1;")).replies[0]!;
    const offsetSeconds = -new Date(NOW).getTimezoneOffset() * 60;
    expect(reply).toBe(`5;255;3;0;1;${Math.floor(NOW / 1000) + offsetSeconds}\n`);
  });

  it("answers I_CONFIG with M, or I when configured", () => {
    expect(controller().handle(msg("5;255;3;0;6;0")).replies).toEqual(["5;255;3;0;6;M\n"]);
    expect(controller(undefined, { unitSystem: "I" }).handle(msg("5;255;3;0;6;0")).replies).toEqual([
      "5;255;3;0;6;I\n",
    ]);
  });

  it("does not reply to readings, logs or requests", () => {
    const c = controller();
    for (const line of [
      "46;0;1;0;0;20.3",
      "0;255;3;0;9;TSM:INIT",
      "1;2;2;0;2;",
      "0;255;3;0;14;Gateway startup complete.",
    ]) {
      expect(c.handle(msg(line)).replies).toEqual([]);
    }
  });
});

describe("MySensorsController: metadata", () => {
  it("remembers presentations and sketch info from the real serial log", () => {
    const storage = new MemoryControllerStorage();
    const c = controller(storage);
    const replies: string[] = [];
    for (const m of framesOf(feed(new MySensorsParser(), [fixture("mysensors/serial-log.txt")]))) {
      replies.push(...c.handle(m).replies);
    }
    // Node 5 asked for the config (5;255;3;0;6;0) during its start-up.
    expect(replies).toEqual(["5;255;3;0;6;M\n"]);
    expect(c.node(5)).toMatchObject({
      nodeId: 5,
      libraryVersion: "2.1.0",
      repeater: false,
      sketchName: "Weather_Station",
    });
    expect(c.node(0)).toMatchObject({ libraryVersion: "2.1.0", repeater: true });
    // Persisted: a new instance sees the same.
    expect(controller(storage).node(5)).toMatchObject({ sketchName: "Weather_Station" });
  });

  it("records children and feeds their sensor type to decode (V_LEVEL of an S_LIGHT_LEVEL)", () => {
    const c = controller();
    const presented = c.handle(msg("48;3;0;0;16;Lux meter"));
    expect(presented.metadata?.children["3"]).toEqual({
      type: 16,
      typeName: "S_LIGHT_LEVEL",
      description: "Lux meter",
    });
    c.handle(msg("48;255;3;0;12;1.4"));
    expect(c.node(48)).toMatchObject({ sketchVersion: "1.4" });
    const decoded = decodeMySensors(msg("48;3;1;0;37;329.0"), { sensorTypeOf: (n, ch) => c.sensorTypeOf(n, ch) });
    expect(readingsOf(decoded)).toEqual([{ sensorId: "mys-48-3", metric: "light", value: 329, unit: "lx" }]);
  });
});
