/**
 * History on the dashboard, in a real browser (Debian's headless Chromium driven by
 * playwright-core) against a real hub fed by the real pipeline (Mosquitto → gateway → NATS →
 * hub → Postgres): the Intel Berkeley Lab rows of 2004 (shared/fixtures/intel-lab/lines.txt,
 * all of mote 1, their times read as UTC) are reached without typing a date, zoomed, overlaid
 * with a second sensor, kept in the URL across a reload; a payload the gateway quarantined,
 * holding markup, is shown as text and runs nothing. Screenshots are kept in test-results/.
 * The fixture holds one mote, so the second sensor is synthetic: `ref`, the eight rows of
 * 2004-02-28 at 0.5 °C more.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { chromium, type Browser, type Page } from "playwright-core";
import { MQTT_URL, uniqueId, waitFor } from "@datalab/shared/testing";
import { startPipeline, type Pipeline } from "../../test/support/pipeline";

/** What page-side callbacks touch, typed here: this package type-checks without the DOM library. */
declare const document: {
  querySelector(
    selector: string,
  ): { textContent: string | null; getAttribute(name: string): string | null; hidden?: boolean } | null;
};

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const RESULTS = fileURLToPath(new URL("../../test-results/", import.meta.url));
const FIXTURE = fileURLToPath(new URL("../../../shared/fixtures/intel-lab/lines.txt", import.meta.url));
const HOSTILE = "<img src=x onerror=alert(1)>";

const id = uniqueId("hist");
const gatewayId = `gw-${id}`;
const mote = (n: string) => `intel-${id}-mote${n}`;
const REF = `intel-${id}-ref`;
const MANY = `many-${id}`;

interface Row {
  sensor: string;
  ts: number;
  temperature: number;
  humidity: number;
  light: number;
  voltage: number;
}

/** `date time epoch moteid temperature humidity light voltage`, space-separated (fixtures README). */
function intelRows(): Row[] {
  const mote1 = readFileSync(FIXTURE, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [date, time, , moteId, t, h, light, v] = l.trim().split(/\s+/);
      return {
        sensor: mote(moteId!),
        ts: Date.parse(`${date}T${time!.slice(0, 12)}Z`),
        temperature: Number(t),
        humidity: Number(h),
        light: Number(light),
        voltage: Number(v),
      };
    });
  const ref = mote1
    .filter((r) => r.ts < Date.parse("2004-03-01T00:00:00Z"))
    .map((r) => ({ ...r, sensor: REF, temperature: Math.round((r.temperature + 0.5) * 1e4) / 1e4 }));
  return [...mote1, ...ref];
}

let pipeline: Pipeline;
let browser: Browser | undefined;
let page: Page;
const rows = intelRows();
const dialogs: string[] = [];
const errors: string[] = [];

const attr = async (sel: string, name: string) => page.getAttribute(sel, name);
const shot = (name: string) => page.screenshot({ path: `${RESULTS}${name}.png`, fullPage: true });

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: the dashboard test needs Debian's package (apt-get install -y ` +
        `chromium)`,
    );
  pipeline = await startPipeline({ id, gatewayId, gatewayEnv: { DATALAB_REPORT_INTERVAL_MS: "200" } });
  const publisher = await mqtt.connectAsync(MQTT_URL);
  for (const r of rows) {
    const { sensor, ...m } = r;
    await publisher.publishAsync(
      `${id}/sensors/${sensor}`,
      JSON.stringify({ sensor, ...m, units: { temperature: "Cel", humidity: "%RH", light: "lx", voltage: "V" } }),
      { qos: 1 },
    );
  }
  await publisher.publishAsync(`${id}/sensors/evil`, HOSTILE, { qos: 1 });
  // A sensor with nine metrics, for the list's layout.
  const nine = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`channel_${i + 1}_voltage`, 1000 + i + 0.123]));
  await publisher.publishAsync(`${id}/sensors/many`, JSON.stringify({ sensor: MANY, ts: Date.now(), ...nine }), {
    qos: 1,
  });
  await publisher.endAsync();
  const n = rows.length * 4;
  await waitFor(
    async () => (await pipeline.count("sensor_id = ANY($1)", [[mote("1"), REF]])) === n,
    `${n} Intel Lab readings in Postgres`,
    45_000,
  );
  await waitFor(
    async () => (await pipeline.count("sensor_id = $1", [MANY])) === 9,
    "the nine-metric sensor in Postgres",
    45_000,
  );
  // The gateway's report carries the quarantined payload to the hub.
  const q = `http://127.0.0.1:${pipeline.hub.httpPort}/api/quarantine?gateway=${gatewayId}`;
  await waitFor(
    async () =>
      ((await (await fetch(q)).json()) as { gateways: { recent: unknown[] }[] }).gateways[0]?.recent.length === 1,
    "the quarantined payload at the hub",
    30_000,
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, timezoneId: "UTC" });
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  mkdirSync(RESULTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await pipeline?.stop();
});

describe("dashboard on the Intel Lab rows of 2004", () => {
  it("reaches the data without typing dates, zooms, overlays two sensors, keeps the view in the URL", async () => {
    await page.goto(`http://127.0.0.1:${pipeline.hub.httpPort}/`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 20_000 });
    const m1 = mote("1");
    const m1Rows = rows.filter((r) => r.sensor === m1);
    expect(m1Rows).toHaveLength(9);
    expect(await page.textContent("#chart-title")).toBe(`${m1} · temperature`);
    // Recorded time (2004) and received time (now) side by side.
    expect(await page.textContent("#sensor-detail")).toMatch(
      /recorded 2004-03-31 03:38:15; received by its gateway \d\d:\d\d:\d\d/,
    );
    expect(await page.locator(`#sensor-list li[data-sensor="${m1}"] .seen`).textContent()).toMatch(
      /^recorded 2004-03-31 03:38:15 · received \d+ s ago$/,
    );

    // The last hour holds nothing: the page says where the data is and goes there on a click.
    await page.waitForSelector("#chart-empty:not([hidden])");
    expect(await page.textContent("#chart-empty-text")).toContain("from 2004-02-28 00:59:16 to 2004-03-31 03:38:15");
    await page.click("#jump-to-data");
    await page.waitForFunction(() => Number(document.querySelector("#chart")?.getAttribute("data-points")) >= 2);
    expect(await page.locator("#chart-empty").isHidden()).toBe(true);
    const from0 = Number(await attr("#chart", "data-from"));
    const to0 = Number(await attr("#chart", "data-to"));
    expect(from0).toBeLessThan(m1Rows[1]!.ts);
    expect(to0).toBeGreaterThan(m1Rows[0]!.ts);
    await shot("dashboard-history-jump");

    /** Drag across the plot from time a to time b (the x scale is exactly data-from..data-to). */
    const drag = async (a: number, b: number) => {
      const [f, t] = [Number(await attr("#chart", "data-from")), Number(await attr("#chart", "data-to"))];
      const over = (await page.locator("#chart .u-over").boundingBox())!;
      const x = (ms: number) => over.x + ((ms - f) / (t - f)) * over.width;
      const y = over.y + over.height / 2;
      await page.mouse.move(x(a), y);
      await page.mouse.down();
      await page.mouse.move(x(b), y, { steps: 8 });
      await page.mouse.up();
      await page.waitForFunction(
        (old) => Number(document.querySelector("#chart")?.getAttribute("data-from")) !== old,
        f,
      );
    };
    // Zoom onto 2004-02-28, then onto its eight readings: each at its own time, no bucket shared.
    await drag(Date.parse("2004-02-27T12:00:00Z"), Date.parse("2004-02-28T12:00:00Z"));
    const day = Number(await attr("#chart", "data-to")) - Number(await attr("#chart", "data-from"));
    expect(day).toBeGreaterThan(20 * 3_600_000);
    expect(day).toBeLessThan(28 * 3_600_000);
    expect(await page.locator("#zoom-reset").isVisible()).toBe(true);
    await drag(Date.parse("2004-02-28T00:58:00Z"), Date.parse("2004-02-28T01:13:00Z"));
    await page.waitForFunction(() => document.querySelector("#chart")?.getAttribute("data-points") === "8");
    await shot("dashboard-history-zoom");

    // Overlay the second sensor: both drawn over the zoomed range.
    await page.selectOption("#overlay-sensor", REF);
    await page.selectOption("#overlay-metric", "temperature");
    await page.click("#overlay-add");
    await page.waitForFunction(
      () => document.querySelector("#chart")?.getAttribute("data-points-per-series") === "8,8",
    );
    expect(await attr("#chart", "data-series")).toBe("2");
    expect(await page.locator("#overlay-chips .chip").count()).toBe(1);
    await shot("dashboard-history-overlay");

    // The view is in the URL: a reload shows the same series over the same range.
    const hash = new URLSearchParams(new URL(page.url()).hash.slice(1));
    expect(hash.getAll("sensor")).toEqual([m1, REF]);
    expect(hash.getAll("metric")).toEqual(["temperature", "temperature"]);
    const [from2, to2] = [await attr("#chart", "data-from"), await attr("#chart", "data-to")];
    expect(hash.get("from")).toBe(from2);
    await page.reload();
    await page.waitForSelector("body[data-ready=true]", { timeout: 20_000 });
    await page.waitForFunction(
      () => document.querySelector("#chart")?.getAttribute("data-points-per-series") === "8,8",
    );
    expect([await attr("#chart", "data-from"), await attr("#chart", "data-to")]).toEqual([from2, to2]);

    // Reset goes back to the range before the first zoom (kept in the page, not the URL).
    await drag(Date.parse("2004-02-28T01:00:00Z"), Date.parse("2004-02-28T01:05:00Z"));
    await page.click("#zoom-reset");
    await page.waitForFunction((f) => document.querySelector("#chart")?.getAttribute("data-from") === f, from2);
    expect(await page.locator("#zoom-reset").isHidden()).toBe(true);
    expect(errors).toEqual([]);
  });

  it("shows a quarantined payload holding markup as text, and no dialog opens", async () => {
    const cell = page.locator(`#gateway-table tr[data-gateway="${gatewayId}"] td button.link`);
    await cell.waitFor({ timeout: 20_000 });
    await cell.click();
    await page.waitForSelector(`#quarantine-panel[data-gateway="${gatewayId}"][data-loaded=true]`);
    const payload = page.locator("#quarantine-panel pre.payload");
    expect(await payload.count()).toBe(1);
    expect(await payload.textContent()).toBe(HOSTILE);
    // Text, not markup: no element was made from it anywhere on the page.
    expect(await page.locator("#quarantine-panel img").count()).toBe(0);
    expect(await page.locator("img[src=x]").count()).toBe(0);
    expect(await page.locator("#quarantine-panel tbody td").nth(1).textContent()).toBe("not_json");
    await page.locator("#quarantine-panel").scrollIntoViewIfNeeded();
    await shot("dashboard-history-quarantine");
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
  });

  it("keeps a sensor with nine metrics readable: values wrap, six shown and +3, sparkline inside its row", async () => {
    const li = page.locator(`#sensor-list li[data-sensor="${MANY}"]`);
    await li.waitFor();
    expect(await li.locator(".values span[data-metric]").count()).toBe(6);
    expect(await li.locator(".values span.more").textContent()).toBe("+3");
    const row = (await li.boundingBox())!;
    const list = (await page.locator("#sensor-list").boundingBox())!;
    for (const part of [
      li.locator("canvas"),
      li.locator(".values"),
      li.locator(".seen"),
      li.locator(".values span.more"),
    ]) {
      const b = (await part.boundingBox())!;
      expect(b.x).toBeGreaterThanOrEqual(row.x);
      expect(b.x + b.width).toBeLessThanOrEqual(row.x + row.width + 0.5);
      expect(b.y + b.height).toBeLessThanOrEqual(row.y + row.height + 0.5);
    }
    expect(row.x + row.width).toBeLessThanOrEqual(list.x + list.width + 0.5);
    expect(row.height).toBeLessThan(150);
    await li.scrollIntoViewIfNeeded();
    await li.screenshot({ path: `${RESULTS}dashboard-history-many-metrics.png` });
  });
});
