// The dashboard: sensor list, one chart (history, then live), gateway panel.
import { api, liveStream } from "./api.js";
import { SeriesChart } from "./chart.js";
import { primaryMetric, duration } from "./format.js";
import { renderGateways } from "./gateways.js";
import { SensorList } from "./sensors.js";

const $ = (id) => document.getElementById(id);

/** Bucket sizes the chart may ask for; it takes the smallest giving at most TARGET_BUCKETS. */
const BUCKETS_MS = [1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3];
const TARGET_BUCKETS = 360;
const MAX_HELD_BACK = 10_000;
/**
 * Gateway state lives in Postgres and also changes when nothing arrives (a gateway going
 * offline is the absence of an event), so the panel is re-read on a timer.
 */
const GATEWAY_REFRESH_MS = 10_000;

const state = { sensor: null, metric: null, rangeMs: 3_600_000, loadSeq: 0, loading: false, heldBack: [] };
const chart = new SeriesChart($("chart"));
const list = new SensorList($("sensor-list"), (id) => select(id));

function bucketFor(rangeMs) {
  return BUCKETS_MS.find((b) => rangeMs / b <= TARGET_BUCKETS) ?? BUCKETS_MS[BUCKETS_MS.length - 1];
}

function note(id, text) {
  $(id).textContent = text;
}

async function loadHistory() {
  if (!state.sensor || !state.metric) return;
  const seq = ++state.loadSeq;
  state.loading = true;
  state.heldBack = [];
  const bucket = bucketFor(state.rangeMs);
  const q = new URLSearchParams({ sensor: state.sensor, metric: state.metric, from: `-${state.rangeMs / 1000}s`, bucket: `${bucket}ms` });
  try {
    const h = await api(`/api/readings?${q}`);
    if (seq !== state.loadSeq) return; // a newer selection won
    chart.setHistory(h, `${state.sensor} · ${state.metric}`);
    // Readings pushed while the history was in flight: keep those newer than it.
    const last = h.ts.length > 0 ? h.ts[h.ts.length - 1] : -Infinity;
    for (const r of state.heldBack) if (r.ts > last) chart.append(r.ts, r.value);
    note("chart-note", `${h.rows} buckets of ${duration(bucket)} (min · avg · max); new readings appear as they arrive.`);
  } catch (err) {
    if (seq === state.loadSeq) note("chart-note", `Could not load the history: ${err.message}`);
  } finally {
    if (seq === state.loadSeq) {
      state.loading = false;
      state.heldBack = [];
    }
  }
}

async function select(id, metric) {
  const s = list.get(id);
  state.sensor = id;
  state.metric = metric && s?.metrics[metric] ? metric : primaryMetric(s?.metrics ?? {});
  list.select(id);
  const sel = $("metric-select");
  sel.replaceChildren(
    ...Object.keys(s?.metrics ?? {})
      .sort()
      .map((m) => new Option(m, m, false, m === state.metric)),
  );
  $("chart-title").textContent = `${id} · ${state.metric ?? "no metric"}`;
  history.replaceState(null, "", `#${new URLSearchParams({ sensor: id, metric: state.metric ?? "" })}`);
  await loadHistory();
}

function onLive(readings) {
  list.applyLive(readings);
  $("sensor-count").textContent = `(${list.size})`;
  for (const r of readings) {
    if (r.sensorId !== state.sensor || r.metric !== state.metric) continue;
    if (!state.loading) chart.append(r.ts, r.value);
    // Held while the history loads; capped, as a stalled request must not grow it for ever.
    else if (state.heldBack.push(r) > MAX_HELD_BACK) state.heldBack.shift();
  }
  if (!state.sensor && list.size > 0) void select(readings[0].sensorId);
}

async function loadSensors() {
  const r = await api("/api/sensors?limit=2000");
  list.setSensors(r.sensors);
  $("sensor-count").textContent = `(${list.size})`;
  note("sensor-note", r.truncated ? `Showing the first ${r.limit} sensors.` : list.size === 0 ? "No readings yet." : "");
}

async function loadSparklines() {
  const r = await api("/api/sparklines?from=-6h&points=48");
  list.setSparklines(r.series);
}

async function loadGateways() {
  try {
    renderGateways($("gateway-table").querySelector("tbody"), await api("/api/gateways"));
  } catch (err) {
    console.warn("gateways:", err.message);
  }
}

function setLiveState(s) {
  const el = $("live-status");
  el.dataset.state = s;
  el.textContent = s === "live" ? "live" : "reconnecting…";
}

async function main() {
  // Subscribe first, load after: nothing published in between is missed.
  liveStream({
    state: setLiveState,
    readings: onLive,
    resync: (why) => {
      note("chart-note", `Reloading: ${why}.`);
      void loadHistory();
      void loadSensors();
    },
  });
  $("sensor-filter").addEventListener("input", (e) => list.setFilter(e.target.value));
  $("metric-select").addEventListener("change", (e) => void select(state.sensor, e.target.value));
  for (const b of document.querySelectorAll("#range-buttons button")) {
    b.addEventListener("click", () => {
      for (const o of document.querySelectorAll("#range-buttons button")) o.classList.toggle("active", o === b);
      state.rangeMs = Number(b.dataset.range);
      void loadHistory();
    });
  }
  await Promise.all([loadSensors(), loadSparklines(), loadGateways()]);
  const wanted = new URLSearchParams(location.hash.slice(1));
  const first = wanted.get("sensor") && list.get(wanted.get("sensor")) ? wanted.get("sensor") : [...list.sensors.keys()].sort()[0];
  if (first && !state.sensor) await select(first, wanted.get("metric") ?? undefined);
  setInterval(loadGateways, GATEWAY_REFRESH_MS);
  setInterval(() => list.tick(), 5_000);
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  note("chart-note", `The dashboard could not start: ${err.message}`);
  console.error(err);
});
