// How values and times read on the page.

const UNITS = { Cel: "°C", "%RH": "%", "%EL": "%", lx: "lx", V: "V", Pa: "Pa" };

export function unitLabel(unit) {
  if (!unit) return "";
  return UNITS[unit] ?? unit;
}

export function formatValue(value, unit) {
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : 2;
  const u = unitLabel(unit);
  const sep = u && !u.startsWith("°") && u !== "%" ? " " : "";
  return `${value.toFixed(digits)}${sep}${u}`;
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function ago(ms, now = Date.now()) {
  if (ms == null) return "—";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A point in time people can place: "14:03:07" today, else the date and time ("2004-02-28 01:11:46"). */
export function dateTime(ms) {
  if (ms == null || !Number.isFinite(ms)) return "—";
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  const time = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  const date = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return new Date().toDateString() === d.toDateString() ? time : `${date} ${time}`;
}

export function duration(ms) {
  if (ms == null) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600000) return `${Math.round(ms / 60000)} min`;
  return `${(ms / 3600000).toFixed(1)} h`;
}

/** The metric a sensor is shown by in the list: temperature when it has one. */
export function primaryMetric(metrics) {
  const names = Object.keys(metrics).sort();
  return names.includes("temperature") ? "temperature" : names.includes("value") ? "value" : names[0];
}
