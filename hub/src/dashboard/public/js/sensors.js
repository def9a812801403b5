// The sensor list: one row per sensor with its last values and a sparkline of its main metric.
import { drawSparkline } from "./sparkline.js";
import { ago, dateTime, formatValue, primaryMetric } from "./format.js";

/** Points a sparkline keeps: the history buckets plus live values pushed after them. */
const SPARK_POINTS = 60;
/** Values shown in a row; the rest are named in a "+n" tooltip, so a row keeps its height. */
const MAX_VALUES = 6;

export class SensorList {
  constructor(ul, onSelect) {
    this.ul = ul;
    this.onSelect = onSelect;
    this.sensors = new Map(); // sensorId -> { sensorId, lastSeen, metrics: { name: {value, unit, ts} } }
    this.sparks = new Map(); // `${sensorId}\u0000${metric}` -> number[]
    this.rows = new Map(); // sensorId -> <li>
    this.dirty = new Set();
    this.filter = "";
    this.selected = null;
    this.pending = false;
  }

  get size() {
    return this.sensors.size;
  }

  get(id) {
    return this.sensors.get(id);
  }

  setSensors(list) {
    for (const s of list) {
      const cur = this.sensors.get(s.sensorId);
      if (!cur) {
        this.sensors.set(s.sensorId, { sensorId: s.sensorId, lastSeen: s.lastSeen, metrics: { ...s.metrics } });
      } else {
        // A reload must not undo values the live stream brought in the meantime.
        for (const [m, v] of Object.entries(s.metrics))
          if (!cur.metrics[m] || v.ts > cur.metrics[m].ts) cur.metrics[m] = v;
        cur.lastSeen = Math.max(cur.lastSeen, s.lastSeen);
      }
      this.dirty.add(s.sensorId);
    }
    this.renderSoon();
  }

  setSparklines(series) {
    for (const s of series) {
      this.sparks.set(`${s.sensorId}\u0000${s.metric}`, s.avg.slice(-SPARK_POINTS));
      this.dirty.add(s.sensorId);
    }
    this.renderSoon();
  }

  /** Readings pushed by the hub: new last values, a point on the sparkline, new sensors appear. */
  applyLive(readings) {
    for (const r of readings) {
      let s = this.sensors.get(r.sensorId);
      if (!s) {
        s = { sensorId: r.sensorId, lastSeen: Date.now(), metrics: {} };
        this.sensors.set(r.sensorId, s);
      }
      const prev = s.metrics[r.metric];
      if (!prev || r.ts >= prev.ts) s.metrics[r.metric] = { value: r.value, unit: r.unit, ts: r.ts, fresh: true };
      s.lastSeen = Date.now();
      const key = `${r.sensorId}\u0000${r.metric}`;
      const spark = this.sparks.get(key) ?? [];
      spark.push(r.value);
      if (spark.length > SPARK_POINTS) spark.splice(0, spark.length - SPARK_POINTS);
      this.sparks.set(key, spark);
      this.dirty.add(r.sensorId);
    }
    this.renderSoon();
  }

  setFilter(text) {
    this.filter = text.trim().toLowerCase();
    for (const [id, li] of this.rows) li.hidden = !id.toLowerCase().includes(this.filter);
  }

  select(id) {
    this.selected = id;
    for (const [sid, li] of this.rows) li.classList.toggle("selected", sid === id);
  }

  /** Re-draw the "x s ago" column. */
  tick() {
    for (const [id, li] of this.rows) li.querySelector(".seen").textContent = seenText(this.sensors.get(id));
  }

  renderSoon() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  render() {
    const added = [];
    for (const id of this.dirty) {
      const s = this.sensors.get(id);
      if (!s) continue;
      let li = this.rows.get(id);
      if (!li) {
        li = document.createElement("li");
        li.dataset.sensor = id;
        li.innerHTML =
          '<div class="name"></div><div class="values"></div><div class="seen"></div><canvas class="spark"></canvas>';
        li.querySelector(".name").textContent = id;
        li.title = id;
        li.addEventListener("click", () => this.onSelect(id));
        li.hidden = this.filter !== "" && !id.toLowerCase().includes(this.filter);
        this.rows.set(id, li);
        added.push(id);
      }
      this.fill(li, s);
    }
    this.dirty.clear();
    if (added.length > 0) {
      // Keep rows in sensor-id order however they arrived.
      const ids = [...this.rows.keys()].sort();
      this.ul.replaceChildren(...ids.map((id) => this.rows.get(id)));
      if (this.selected) this.select(this.selected);
    }
  }

  fill(li, s) {
    const metric = primaryMetric(s.metrics);
    const values = li.querySelector(".values");
    const names = Object.keys(s.metrics).sort((a, b) =>
      a === metric ? -1 : b === metric ? 1 : a < b ? -1 : a > b ? 1 : 0,
    );
    const more = names.slice(MAX_VALUES);
    values.replaceChildren(
      ...names.slice(0, MAX_VALUES).map((m) => {
        const v = s.metrics[m];
        const span = document.createElement("span");
        span.dataset.metric = m;
        span.title = `${m} at ${new Date(v.ts).toLocaleString()}`;
        span.textContent = formatValue(v.value, v.unit);
        if (v.fresh) span.classList.add("fresh");
        return span;
      }),
      ...(more.length > 0 ? [moreSpan(s, more)] : []),
    );
    li.querySelector(".seen").textContent = seenText(s);
    const canvas = li.querySelector("canvas");
    canvas.dataset.metric = metric ?? "";
    drawSparkline(canvas, this.sparks.get(`${s.sensorId}\u0000${metric}`) ?? []);
  }
}

/**
 * Recorded time (the newest reading's own timestamp) and received time (when the hub last got
 * one) differ for replayed or delayed data; both are shown, recorded first.
 */
function seenText(s) {
  if (!s) return "";
  const recorded = Math.max(...Object.values(s.metrics).map((v) => v.ts));
  const old = Date.now() - recorded > 86_400_000;
  return `recorded ${old ? dateTime(recorded) : ago(recorded)} · received ${ago(s.lastSeen)}`;
}

function moreSpan(s, names) {
  const span = document.createElement("span");
  span.className = "more";
  span.textContent = `+${names.length}`;
  span.title = names.map((m) => `${m}: ${formatValue(s.metrics[m].value, s.metrics[m].unit)}`).join("\n");
  return span;
}
