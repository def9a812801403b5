// Talking to the hub: JSON queries and the live stream. Same origin, so the session cookie
// (set by /login when the hub has a token) goes along with both.

/** GET a JSON endpoint; a 401 sends the browser to the login form. */
export async function api(path) {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  if (res.status === 401) {
    location.assign("/login");
    throw new Error("not logged in");
  }
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `${path}: HTTP ${res.status}`);
  return body;
}

/**
 * Subscribe to /api/live. `on.readings(list)` gets each pushed batch, `on.state(s)` gets
 * "live" | "reconnecting", `on.resync()` is called when readings may have been missed
 * (a reconnect, or the hub dropping readings for a slow connection).
 */
export function liveStream(on) {
  const es = new EventSource("/api/live");
  let wasDown = false;
  es.addEventListener("open", () => {
    on.state("live");
    if (wasDown) on.resync("reconnected");
    wasDown = false;
  });
  es.addEventListener("error", () => {
    wasDown = true;
    on.state("reconnecting");
  });
  es.addEventListener("readings", (ev) => on.readings(JSON.parse(ev.data)));
  es.addEventListener("dropped", (ev) =>
    on.resync(`the hub skipped ${JSON.parse(ev.data).dropped} readings for this slow connection`),
  );
  return es;
}
