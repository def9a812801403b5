// The time-series chart: history (min/max/avg per bucket) from /api/readings, then live
// readings appended as the hub pushes them.
import uPlot from "/vendor/uPlot.esm.js";
import { formatValue, unitLabel } from "./format.js";

/** The chart keeps at most this many points; older ones fall off the left as live ones arrive. */
const MAX_POINTS = 20000;
const HEIGHT = 320;

export class SeriesChart {
  constructor(el) {
    this.el = el;
    this.plot = null;
    this.data = [[], [], [], []];
    this.unit = null;
    this.livePoints = 0;
    this.pending = false;
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: HEIGHT })).observe(el);
  }

  width() {
    return Math.max(300, this.el.clientWidth);
  }

  /** h: {ts[], avg[], min[], max[], unit} from /api/readings?bucket=... */
  setHistory(h, label) {
    this.unit = h.unit;
    this.livePoints = 0;
    this.data = [h.ts.map((t) => t / 1000), h.avg.slice(), h.min.slice(), h.max.slice()];
    this.build(label);
    this.publish();
  }

  /** A live reading: a point whose min = max = avg = value. Readings can arrive out of order. */
  append(ts, value) {
    if (!this.plot) return;
    const x = ts / 1000;
    const xs = this.data[0];
    let i = xs.length;
    while (i > 0 && xs[i - 1] > x) i--;
    for (let s = 0; s < 4; s++) this.data[s].splice(i, 0, s === 0 ? x : value);
    if (xs.length > MAX_POINTS) for (const col of this.data) col.splice(0, xs.length - MAX_POINTS);
    this.livePoints++;
    this.redrawSoon();
  }

  /** Many readings can land within one frame: draw once per frame. */
  redrawSoon() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot?.setData(this.data);
      this.publish();
    });
  }

  /** The point counts, on the element: what a person can inspect and a test can wait for. */
  publish() {
    this.el.dataset.points = String(this.data[0].length);
    this.el.dataset.livePoints = String(this.livePoints);
  }

  build(label) {
    this.plot?.destroy();
    const unit = this.unit;
    const fmt = (_u, v) => (v == null ? "—" : formatValue(v, unit));
    const opts = {
      width: this.width(),
      height: HEIGHT,
      scales: { x: { time: true } },
      series: [
        {},
        { label, stroke: "#2563eb", width: 2, value: fmt, points: { size: 5, fill: "#2563eb" } },
        { label: "min", stroke: "#93c5fd", width: 1, dash: [4, 3], value: fmt, points: { show: false } },
        { label: "max", stroke: "#93c5fd", width: 1, dash: [4, 3], value: fmt, points: { show: false } },
      ],
      bands: [{ series: [3, 2], fill: "rgba(37, 99, 235, 0.08)" }],
      axes: [{}, { label: unitLabel(unit), size: 60, values: (_u, ticks) => ticks.map((v) => +v.toFixed(2)) }],
    };
    this.el.replaceChildren();
    this.plot = new uPlot(opts, this.data, this.el);
  }
}
