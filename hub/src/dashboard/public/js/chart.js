// The time-series chart: one series with its min/avg/max band, or several overlaid (their
// averages), from /api/readings; live readings appended to a single series; drag to zoom.
import uPlot from "/vendor/uPlot.esm.js";
import { formatValue, unitLabel } from "./format.js";

/** The chart keeps at most this many points; older ones fall off the left as live ones arrive. */
const MAX_POINTS = 20000;
const HEIGHT = 320;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#d97706", "#0891b2"];
/** A drag narrower than this (pixels) is a click, not a zoom. */
const MIN_DRAG_PX = 5;

export class SeriesChart {
  /** onZoom(fromMs, toMs): the user dragged across the chart. */
  constructor(el, onZoom) {
    this.el = el;
    this.onZoom = onZoom;
    this.plot = null;
    this.data = [[]];
    this.single = true;
    this.livePoints = 0;
    this.pending = false;
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: HEIGHT })).observe(el);
  }

  width() {
    return Math.max(300, this.el.clientWidth);
  }

  /**
   * list: [{label, unit, ts[], avg[], min[], max[]}] (bucketed answers of /api/readings).
   * range: {from, to} in ms, the x extent shown whatever the data covers.
   */
  setSeries(list, range) {
    this.livePoints = 0;
    this.single = list.length === 1;
    this.range = range;
    if (this.single) {
      const h = list[0];
      this.data = [h.ts.map((t) => t / 1000), h.avg.slice(), h.min.slice(), h.max.slice()];
    } else {
      // One x axis for all: uPlot.join aligns the tables, with nulls where a series has no bucket.
      this.data = list.length === 0 ? [[]] : uPlot.join(list.map((h) => [h.ts.map((t) => t / 1000), h.avg.slice()]));
    }
    this.build(list);
    this.publish(list.length);
  }

  /** A live reading on a single series: a point whose min = max = avg = value. Readings can arrive out of order. */
  append(ts, value) {
    if (!this.plot || !this.single) return;
    const x = ts / 1000;
    const xs = this.data[0];
    let i = xs.length;
    while (i > 0 && xs[i - 1] > x) i--;
    for (let s = 0; s < 4; s++) this.data[s].splice(i, 0, s === 0 ? x : value);
    if (xs.length > MAX_POINTS) for (const col of this.data) col.splice(0, xs.length - MAX_POINTS);
    this.livePoints++;
    if (this.range && ts >= this.range.to) this.range = { ...this.range, to: ts + 1 };
    this.redrawSoon();
  }

  /** Many readings can land within one frame: draw once per frame. */
  redrawSoon() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot?.setData(this.data);
      this.publish(this.data.length - 1);
    });
  }

  /** Counts on the element: what a person can inspect and a test can wait for. */
  publish(seriesCount) {
    const perSeries = [];
    for (let s = 1; s < (this.single ? 2 : this.data.length); s++)
      perSeries.push(this.data[s].filter((v) => v != null).length);
    this.el.dataset.points = String(perSeries.reduce((a, b) => a + b, 0));
    this.el.dataset.pointsPerSeries = perSeries.join(",");
    this.el.dataset.livePoints = String(this.livePoints);
    this.el.dataset.series = String(this.single ? 1 : seriesCount);
    this.el.dataset.from = String(this.range?.from ?? "");
    this.el.dataset.to = String(this.range?.to ?? "");
  }

  build(list) {
    this.plot?.destroy();
    const units = [...new Set(list.map((h) => h.unit))];
    const unit = units.length === 1 ? units[0] : null;
    const fmt = (u) => (_p, v) => (v == null ? "—" : formatValue(v, u));
    const series = [{}];
    if (this.single) {
      const h = list[0];
      series.push(
        { label: h.label, stroke: COLORS[0], width: 2, value: fmt(h.unit), points: { size: 5, fill: COLORS[0] } },
        { label: "min", stroke: "#93c5fd", width: 1, dash: [4, 3], value: fmt(h.unit), points: { show: false } },
        { label: "max", stroke: "#93c5fd", width: 1, dash: [4, 3], value: fmt(h.unit), points: { show: false } },
      );
    } else {
      list.forEach((h, i) =>
        series.push({
          label: h.label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          value: fmt(h.unit),
          spanGaps: true,
          points: { size: 4 },
        }),
      );
    }
    const opts = {
      width: this.width(),
      height: HEIGHT,
      scales: { x: { time: true, range: () => [this.range.from / 1000, this.range.to / 1000] } },
      series,
      ...(this.single ? { bands: [{ series: [3, 2], fill: "rgba(37, 99, 235, 0.08)" }] } : {}),
      axes: [
        {},
        {
          label: unit === null && units.length > 1 ? "mixed units" : unitLabel(unit),
          size: 60,
          values: (_u, ticks) => ticks.map((v) => +v.toFixed(2)),
        },
      ],
      // Dragging selects a time span; the page then asks the hub for it at a finer bucket.
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < MIN_DRAG_PX) return;
            const from = u.posToVal(u.select.left, "x") * 1000;
            const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            this.onZoom(Math.floor(from), Math.ceil(to));
          },
        ],
      },
    };
    this.el.replaceChildren();
    this.plot = new uPlot(opts, this.data, this.el);
  }
}
