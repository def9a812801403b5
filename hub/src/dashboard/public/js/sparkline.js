// A sparkline is a polyline on a small canvas: hundreds of them must stay cheap, so no chart
// library here.

export function drawSparkline(canvas, values) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 110;
  const h = canvas.clientHeight || 36;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const pts = values.filter((v) => Number.isFinite(v));
  canvas.dataset.points = String(pts.length);
  if (pts.length === 0) return;
  let lo = Math.min(...pts);
  let hi = Math.max(...pts);
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const pad = 3;
  const x = (i) => (pts.length === 1 ? w / 2 : pad + (i * (w - 2 * pad)) / (pts.length - 1));
  const y = (v) => h - pad - ((v - lo) * (h - 2 * pad)) / (hi - lo);
  ctx.strokeStyle = "#2563eb";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  pts.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
  ctx.stroke();
  ctx.fillStyle = "#2563eb";
  ctx.beginPath();
  ctx.arc(x(pts.length - 1), y(pts[pts.length - 1]), 2.5, 0, Math.PI * 2);
  ctx.fill();
}
