/**
 * The dashboard in a real browser (Debian's headless Chromium driven by playwright-core),
 * served by a real hub fed by the real pipeline: Mosquitto → gateway → NATS → hub → Postgres.
 * The page must list the sensors, draw history, and show a reading published during the test
 * without a reload. A screenshot is kept in test-results/dashboard.png.
 */
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { chromium, type Browser, type Page } from "playwright-core";
import { MQTT_URL, uniqueId, waitFor, type TestDatabase } from "@datalab/shared/testing";
import type { Hub } from "../src/index";
import { startPipeline, type Pipeline } from "../../test/support/pipeline";

/** What page-side callbacks touch, typed here: this package type-checks without the DOM library. */
declare const document: {
  querySelector(selector: string): { textContent: string | null; getAttribute(name: string): string | null } | null;
};

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const RESULTS = fileURLToPath(new URL("../../test-results/", import.meta.url));

const id = uniqueId("dash");
const sensors = ["greenhouse", "cellar", "attic"].map((s) => `${s}-${id}`);
const gatewayId = `gw-${id}`;
let pipeline: Pipeline;
let db: TestDatabase;
let hub: Hub;
let publisher: mqtt.MqttClient;
let browser: Browser | undefined;
let page: Page;

async function publish(
  sensor: string,
  m: { ts: number; temperature: number; humidity: number; battery: number },
): Promise<void> {
  await publisher.publishAsync(
    `${id}/sensors/${sensor}`,
    JSON.stringify({ sensor, ...m, units: { temperature: "Cel", humidity: "%RH", battery: "V" } }),
    { qos: 1 },
  );
}

beforeAll(async () => {
  // Fail, not skip: CI must install Debian's `chromium` package for this test.
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: the dashboard test needs Debian's package (apt-get install -y ` +
        `chromium)`,
    );
  // Health reports off, so the gateway panel's backlog cell is the "not reported" dash.
  pipeline = await startPipeline({ id, gatewayId, gatewayEnv: { DATALAB_REPORT_INTERVAL_MS: "0" } });
  ({ db, hub } = pipeline);
  publisher = await mqtt.connectAsync(MQTT_URL);
  // 50 minutes of history, one reading per sensor every 30 s.
  const now = Date.now();
  let n = 0;
  for (let i = 100; i >= 1; i--) {
    for (const [k, s] of sensors.entries()) {
      const t = now - i * 30_000;
      await publish(s, {
        ts: t,
        temperature: Math.round((18 + k * 3 + 2 * Math.sin(i / 8 + k)) * 100) / 100,
        humidity: Math.round((45 + 10 * Math.cos(i / 13 + k)) * 10) / 10,
        battery: Math.round((3.3 - i * 0.001) * 1000) / 1000,
      });
      n += 3;
    }
  }
  await waitFor(
    async () => {
      const r = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings WHERE sensor_id = ANY($1)", [
        sensors,
      ]);
      return Number(r.rows[0]!.n) === n;
    },
    `${n} readings in Postgres`,
    45_000,
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
});

afterAll(async () => {
  await browser?.close();
  await publisher?.endAsync();
  await pipeline?.stop();
});

describe("dashboard in headless Chromium", () => {
  it("lists the sensors, charts history, and shows a reading published now without a reload", async () => {
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${hub.httpPort}/`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 20_000 });

    // Sensors, in id order, each with last values and a drawn sparkline.
    const listed = await page.$$eval("#sensor-list li", (lis) => lis.map((li) => li.getAttribute("data-sensor")));
    expect(listed).toEqual([...sensors].sort());
    for (const s of sensors) {
      const row = page.locator(`#sensor-list li[data-sensor="${s}"]`);
      expect(await row.locator(".values span[data-metric=temperature]").textContent()).toMatch(/°C$/);
      expect(await row.locator(".values span[data-metric=battery]").textContent()).toMatch(/ V$/);
      expect(Number(await row.locator("canvas").getAttribute("data-points"))).toBeGreaterThan(5);
    }

    // The first sensor is selected and its history is drawn: uPlot's canvas, with points.
    const first = [...sensors].sort()[0]!;
    expect(await page.textContent("#chart-title")).toBe(`${first} · temperature`);
    await page.waitForFunction(() => Number(document.querySelector("#chart")?.getAttribute("data-points")) > 50);
    expect(await page.locator("#chart canvas").count()).toBeGreaterThan(0);
    const historyPoints = Number(await page.getAttribute("#chart", "data-points"));

    // Gateway panel: ours, online; backlog not reported (reports are off here).
    const gw = page.locator(`#gateway-table tr[data-gateway="${gatewayId}"]`);
    expect(await gw.locator("td").nth(1).textContent()).toMatch(/online/);
    expect(await gw.locator("td").nth(4).textContent()).toBe("3");
    expect(await gw.locator("td").nth(5).textContent()).toBe("—");

    await page.waitForFunction(() => document.querySelector("#live-status")?.textContent === "live");
    // A reading published now reaches the page through the live stream.
    await publish(first, { ts: Date.now(), temperature: 31.42, humidity: 50, battery: 3.2 });
    await page.waitForFunction(
      (s) =>
        document.querySelector(`#sensor-list li[data-sensor="${s}"] span[data-metric=temperature]`)?.textContent ===
        "31.42°C",
      first,
      {
        timeout: 20_000,
      },
    );
    await page.waitForFunction(
      (n) => Number(document.querySelector("#chart")?.getAttribute("data-points")) > n,
      historyPoints,
    );
    expect(Number(await page.getAttribute("#chart", "data-live-points"))).toBeGreaterThanOrEqual(1);

    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: `${RESULTS}dashboard.png`, fullPage: true });
    expect(errors).toEqual([]);
  });
});
