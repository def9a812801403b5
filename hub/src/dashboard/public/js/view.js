// The view in the URL fragment: `sensor=a&metric=t&sensor=b&metric=h&from=...&to=...` (the
// first pair is the selected sensor, the others are overlaid) or `range=3600000` for the last
// hour. Times are epoch ms, so a shared link shows the same span in every time zone.

export function encodeView(series, range) {
  const q = new URLSearchParams();
  for (const s of series) {
    q.append("sensor", s.sensor);
    q.append("metric", s.metric ?? "");
  }
  if (range.rel) q.set("range", String(range.rel));
  else {
    q.set("from", String(range.from));
    q.set("to", String(range.to));
  }
  return q.toString();
}

export function decodeView(fragment) {
  const q = new URLSearchParams(fragment);
  const sensors = q.getAll("sensor");
  const metrics = q.getAll("metric");
  const series = sensors.filter((s) => s !== "").map((sensor, i) => ({ sensor, metric: metrics[i] || undefined }));
  const from = Number(q.get("from"));
  const to = Number(q.get("to"));
  const rel = Number(q.get("range"));
  let range = null;
  if (q.has("from") && q.has("to") && Number.isFinite(from) && Number.isFinite(to) && from < to) range = { from, to };
  else if (Number.isFinite(rel) && rel > 0) range = { rel };
  return { series, range };
}

/** Epoch ms as the value of an <input type="datetime-local"> (local time, to the second). */
export function toLocalInput(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  const date = `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return `${date}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** An <input type="datetime-local"> value (local time) as epoch ms, or null when empty or invalid. */
export function fromLocalInput(v) {
  if (!v) return null;
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? t : null;
}
