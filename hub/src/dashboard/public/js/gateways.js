// The gateway panel: what the hub knows of each gateway (last batch, lag) and what the
// gateway reports itself (backlog, oldest unsent reading, quarantine), "—" until it does.
import { ago, duration } from "./format.js";

const NOT_REPORTED = "—";

/** onQuarantine(gatewayId): the quarantine count was clicked. */
export function renderGateways(tbody, data, onQuarantine) {
  const rows = data.gateways.map((g) => {
    const tr = document.createElement("tr");
    tr.dataset.gateway = g.gatewayId;
    const q = g.quarantine ? Object.values(g.quarantine).reduce((a, b) => a + b, 0) : null;
    const cells = [
      g.gatewayId,
      null, // status, filled below
      ago(g.lastBatchAt, data.now),
      duration(g.deliveryLagMs),
      String(g.sensors),
      g.backlog.readings == null ? NOT_REPORTED : String(g.backlog.readings),
      g.backlog.oldestAt == null ? NOT_REPORTED : ago(g.backlog.oldestAt, data.now).replace(" ago", ""),
      q == null ? NOT_REPORTED : String(q),
    ];
    for (const [i, text] of cells.entries()) {
      const td = document.createElement("td");
      if (i === 1) {
        const dot = document.createElement("span");
        dot.className = g.online ? "dot on" : "dot";
        td.append(dot, g.online ? "online" : "offline");
        td.title = `a batch or report within ${data.onlineWindowMs / 1000} s counts as online`;
      } else if (i === 7 && q != null) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "link";
        b.textContent = text;
        b.title = "show what this gateway quarantined";
        b.addEventListener("click", () => onQuarantine(g.gatewayId));
        td.append(b);
      } else {
        td.textContent = text;
      }
      if (i === 7 && g.quarantine)
        td.title = Object.entries(g.quarantine)
          .map(([k, v]) => `${k}: ${v}`)
          .join("\n");
      tr.append(td);
    }
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.innerHTML = '<td colspan="8" class="muted">No gateway has delivered a batch yet.</td>';
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}
