// The dashboard: sensor list, one chart (any time range, zoom, overlays, live), gateway panel,
// quarantine panel. The view (series and range) lives in the URL's fragment, so it can be
// shared and reloaded.
import { api, liveStream } from "./api.js";
import { SeriesChart } from "./chart.js";
import { primaryMetric, duration, dateTime } from "./format.js";
import { renderGateways } from "./gateways.js";
import { QuarantinePanel } from "./quarantine.js";
import { SensorList } from "./sensors.js";
import { decodeView, encodeView, toLocalInput, fromLocalInput } from "./view.js";

const $ = (id) => document.getElementById(id);

/** Bucket sizes the chart may ask for; it takes the smallest giving at most TARGET_BUCKETS. */
const BUCKETS_MS = [
  1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3,
  604800e3, 2592000e3,
];
const TARGET_BUCKETS = 360;
const MAX_HELD_BACK = 10_000;
const MAX_OVERLAYS = 5;
/**
 * Gateway state lives in Postgres and also changes when nothing arrives (a gateway going
 * offline is the absence of an event), so the panel is re-read on a timer.
 */
const GATEWAY_REFRESH_MS = 10_000;

const state = {
  /** [{sensor, metric}]: the first is the selected sensor; the others are overlaid. */
  series: [],
  /** {rel: ms back from now} or {from, to} in epoch ms. */
  range: { rel: 3_600_000 },
  /** Ranges before each zoom, for Reset. */
  zoomedFrom: null,
  loadSeq: 0,
  loading: false,
  heldBack: [],
  /** Extent of the shown series, from the last answer: where their data is. */
  extent: null,
  /** The API's longest range (GET /api), so a jump never asks for more. */
  maxRangeMs: Infinity,
};
const chart = new SeriesChart($("chart"), (from, to) => zoom(from, to));
const list = new SensorList($("sensor-list"), (id) => void select(id));
const quarantine = new QuarantinePanel($("quarantine-panel"));

function bucketFor(rangeMs) {
  return BUCKETS_MS.find((b) => rangeMs / b <= TARGET_BUCKETS) ?? BUCKETS_MS[BUCKETS_MS.length - 1];
}

function note(id, text) {
  $(id).textContent = text;
}

/** The range as absolute times now. */
function span() {
  if (state.range.rel) {
    const to = Date.now();
    return { from: to - state.range.rel, to };
  }
  return { from: state.range.from, to: state.range.to };
}

function saveView() {
  history.replaceState(null, "", `#${encodeView(state.series, state.range)}`);
}

function showRangeControls() {
  for (const b of document.querySelectorAll("#range-buttons button"))
    b.classList.toggle("active", Number(b.dataset.range) === state.range.rel);
  const { from, to } = span();
  $("range-from").value = toLocalInput(from);
  $("range-to").value = toLocalInput(to);
  $("zoom-reset").hidden = state.zoomedFrom === null;
}

function label(s) {
  return `${s.sensor} · ${s.metric}`;
}

async function loadHistory() {
  const primary = state.series[0];
  if (!primary) return;
  const seq = ++state.loadSeq;
  state.loading = true;
  state.heldBack = [];
  const { from, to } = span();
  const bucket = bucketFor(to - from);
  const q = new URLSearchParams({ from: String(from), to: String(to), bucket: `${bucket}ms` });
  for (const s of new Set(state.series.map((x) => x.sensor))) q.append("sensor", s);
  for (const m of new Set(state.series.map((x) => x.metric))) q.append("metric", m);
  $("chart-empty").hidden = true;
  try {
    const h = await api(`/api/readings?${q}`);
    if (seq !== state.loadSeq) return; // a newer view won
    // One series answers flat, several as a list; the request asks every sensor × metric, the chart
    // shows the pairs chosen.
    const answered = h.series ?? [h];
    const shown = state.series.map((s) => {
      const a = answered.find((x) => x.sensor === s.sensor && x.metric === s.metric);
      return {
        label: label(s),
        unit: a?.unit ?? null,
        extent: a?.extent ?? null,
        ts: a?.ts ?? [],
        avg: a?.avg ?? [],
        min: a?.min ?? [],
        max: a?.max ?? [],
      };
    });
    chart.setSeries(shown, { from, to });
    state.extent = unionExtent(shown.map((s) => s.extent));
    if (state.range.rel && state.series.length === 1) {
      // Readings pushed while the history was in flight: keep those newer than it.
      const last = shown[0].ts.length > 0 ? shown[0].ts[shown[0].ts.length - 1] : -Infinity;
      for (const r of state.heldBack) if (r.ts > last) chart.append(r.ts, r.value);
    }
    const buckets = shown.reduce((n, s) => n + s.ts.length, 0);
    const live = state.range.rel && state.series.length === 1 ? "; new readings appear as they arrive" : "";
    note(
      "chart-note",
      `${buckets} buckets of ${duration(bucket)} (${state.series.length === 1 ? "min · avg · max" : "averages"}) ` +
        `from ${dateTime(from)} to ${dateTime(to)}${live}. Drag across the chart to zoom.`,
    );
    const empty = shown.filter((s) => s.ts.length === 0);
    if (empty.length > 0) offerData(empty, shown.length);
  } catch (err) {
    if (seq === state.loadSeq) {
      chart.setSeries([], { from, to });
      note("chart-note", `Could not load the history: ${err.message}`);
    }
  } finally {
    if (seq === state.loadSeq) {
      state.loading = false;
      state.heldBack = [];
    }
  }
}

/** A series has nothing in the range: say where its data is, and offer a range holding every series' data. */
function offerData(empty, shown) {
  const where = empty
    .filter((s) => s.extent)
    .map((s) => `${s.label} has data from ${dateTime(s.extent.first)} to ${dateTime(s.extent.last)}`);
  if (where.length === 0 || !state.extent) return;
  $("chart-empty-text").textContent = `No readings in this range: ${where.join("; ")} (recorded time).`;
  $("jump-to-data").textContent = shown > 1 ? "Show all their data" : "Show its data";
  $("chart-empty").hidden = false;
}

function unionExtent(extents) {
  const known = extents.filter(Boolean);
  if (known.length === 0) return null;
  return { first: Math.min(...known.map((e) => e.first)), last: Math.max(...known.map((e) => e.last)) };
}

function jumpToData() {
  const e = state.extent;
  if (!e) return;
  // A margin on both sides, and at least a minute, so a single reading is not at the edge.
  const pad = Math.max(30_000, Math.round((e.last - e.first) * 0.02));
  const to = e.last + pad + 1;
  // Data spread over more than the API serves in one answer: its newest part.
  setRange({ from: Math.max(e.first - pad, to - state.maxRangeMs), to });
}

function setRange(range, { keepZoom = false } = {}) {
  if (!keepZoom) state.zoomedFrom = null;
  state.range = range;
  showRangeControls();
  saveView();
  void loadHistory();
}

function zoom(from, to) {
  if (to - from < 1_000) return;
  state.zoomedFrom ??= state.range;
  setRange({ from, to }, { keepZoom: true });
}

function resetZoom() {
  const back = state.zoomedFrom;
  if (!back) return;
  state.zoomedFrom = null;
  setRange(back);
}

function fillMetricSelect(sel, sensorId, chosen) {
  const s = list.get(sensorId);
  sel.replaceChildren(
    ...Object.keys(s?.metrics ?? {})
      .sort()
      .map((m) => new Option(m, m, false, m === chosen)),
  );
}

async function select(id, metric) {
  const s = list.get(id);
  const m = metric && s?.metrics[metric] ? metric : primaryMetric(s?.metrics ?? {});
  state.series = [
    { sensor: id, metric: m },
    ...state.series.slice(1).filter((o) => !(o.sensor === id && o.metric === m)),
  ];
  showSelection();
  saveView();
  await loadHistory();
}

function showSelection() {
  const primary = state.series[0];
  list.select(primary?.sensor ?? null);
  fillMetricSelect($("metric-select"), primary?.sensor, primary?.metric);
  $("chart-title").textContent = primary ? label(primary) : "Select a sensor";
  const s = primary && list.get(primary.sensor);
  const newest = s ? Math.max(...Object.values(s.metrics).map((v) => v.ts)) : NaN;
  note(
    "sensor-detail",
    s ? `Newest reading recorded ${dateTime(newest)}; received by its gateway ${dateTime(s.lastSeen)}.` : "",
  );
  renderOverlays();
}

function renderOverlays() {
  const chips = state.series.slice(1).map((s, i) => {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.dataset.sensor = s.sensor;
    chip.dataset.metric = s.metric;
    chip.textContent = label(s);
    const x = document.createElement("button");
    x.type = "button";
    x.textContent = "×";
    x.title = "remove from the chart";
    x.addEventListener("click", () => {
      state.series.splice(i + 1, 1);
      renderOverlays();
      saveView();
      void loadHistory();
    });
    chip.append(x);
    return chip;
  });
  $("overlay-chips").replaceChildren(...chips);
}

function fillOverlaySensors() {
  const sel = $("overlay-sensor");
  const keep = sel.value;
  sel.replaceChildren(
    new Option("compare with…", ""),
    ...[...list.sensors.keys()].sort().map((id) => new Option(id, id, false, id === keep)),
  );
  fillMetricSelect($("overlay-metric"), sel.value, state.series[0]?.metric);
}

function addOverlay() {
  const sensor = $("overlay-sensor").value;
  const metric = $("overlay-metric").value;
  if (!sensor || !metric || state.series.length > MAX_OVERLAYS) return;
  if (state.series.some((s) => s.sensor === sensor && s.metric === metric)) return;
  state.series.push({ sensor, metric });
  renderOverlays();
  saveView();
  void loadHistory();
}

function onLive(readings) {
  list.applyLive(readings);
  $("sensor-count").textContent = `(${list.size})`;
  const primary = state.series[0];
  const following = primary && state.range.rel && state.series.length === 1;
  for (const r of readings) {
    if (!following || r.sensorId !== primary.sensor || r.metric !== primary.metric) continue;
    if (!state.loading) chart.append(r.ts, r.value);
    // Held while the history loads; capped, as a stalled request must not grow it for ever.
    else if (state.heldBack.push(r) > MAX_HELD_BACK) state.heldBack.shift();
  }
  if (!primary && list.size > 0) void select(readings[0].sensorId);
}

async function loadSensors() {
  const r = await api("/api/sensors?limit=2000");
  list.setSensors(r.sensors);
  $("sensor-count").textContent = `(${list.size})`;
  note(
    "sensor-note",
    r.truncated ? `Showing the first ${r.limit} sensors.` : list.size === 0 ? "No readings yet." : "",
  );
  fillOverlaySensors();
}

async function loadSparklines() {
  const r = await api("/api/sparklines?from=-6h&points=48");
  list.setSparklines(r.series);
}

async function loadGateways() {
  try {
    const data = await api("/api/gateways");
    renderGateways($("gateway-table").querySelector("tbody"), data, (gatewayId) => void quarantine.show(gatewayId));
    quarantine.setGateways(data.gateways.map((g) => g.gatewayId));
  } catch (err) {
    console.warn("gateways:", err.message);
  }
}

function setLiveState(s) {
  const el = $("live-status");
  el.dataset.state = s;
  el.textContent = s === "live" ? "live" : "reconnecting…";
}

function wireControls() {
  $("sensor-filter").addEventListener("input", (e) => list.setFilter(e.target.value));
  $("metric-select").addEventListener("change", (e) => void select(state.series[0].sensor, e.target.value));
  for (const b of document.querySelectorAll("#range-buttons button"))
    b.addEventListener("click", () => setRange({ rel: Number(b.dataset.range) }));
  $("range-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const from = fromLocalInput($("range-from").value);
    const to = fromLocalInput($("range-to").value);
    if (from === null || to === null || from >= to) {
      note("chart-note", "Choose a start before the end.");
      return;
    }
    setRange({ from, to });
  });
  $("zoom-reset").addEventListener("click", resetZoom);
  $("jump-to-data").addEventListener("click", jumpToData);
  $("overlay-sensor").addEventListener("change", (e) =>
    fillMetricSelect($("overlay-metric"), e.target.value, state.series[0]?.metric),
  );
  $("overlay-add").addEventListener("click", addOverlay);
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
  wireControls();
  const [limits] = await Promise.all([api("/api"), loadSensors(), loadSparklines(), loadGateways()]);
  state.maxRangeMs = limits.limits.maxRangeDays * 86_400_000;
  const view = decodeView(location.hash.slice(1));
  if (view.range) state.range = view.range;
  const wanted = view.series.filter((s) => list.get(s.sensor));
  if (wanted.length > 0) {
    state.series = wanted.map((s) => ({
      sensor: s.sensor,
      metric: s.metric && list.get(s.sensor).metrics[s.metric] ? s.metric : primaryMetric(list.get(s.sensor).metrics),
    }));
    showSelection();
    showRangeControls();
    saveView();
    await loadHistory();
  } else {
    showRangeControls();
    const first = [...list.sensors.keys()].sort()[0];
    if (first && state.series.length === 0) await select(first);
  }
  setInterval(loadGateways, GATEWAY_REFRESH_MS);
  setInterval(() => list.tick(), 5_000);
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  note("chart-note", `The dashboard could not start: ${err.message}`);
  console.error(err);
});
