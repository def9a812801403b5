// The quarantine panel: what one gateway refused, from its latest report (/api/quarantine).
// A payload is whatever someone sent: it goes into text nodes only, never innerHTML.
import { api } from "./api.js";
import { dateTime } from "./format.js";

export class QuarantinePanel {
  constructor(section) {
    this.section = section;
    this.select = section.querySelector("select");
    this.tbody = section.querySelector("tbody");
    this.summary = section.querySelector(".summary");
    this.select.addEventListener("change", () => void this.show(this.select.value));
  }

  setGateways(ids) {
    const keep = this.select.value;
    this.select.replaceChildren(
      new Option("choose a gateway", ""),
      ...ids.map((id) => new Option(id, id, false, id === keep)),
    );
  }

  async show(gatewayId) {
    if (!gatewayId) return;
    if (![...this.select.options].some((o) => o.value === gatewayId))
      this.select.append(new Option(gatewayId, gatewayId));
    this.select.value = gatewayId;
    this.section.dataset.gateway = gatewayId;
    this.section.dataset.loaded = "false";
    try {
      const r = await api(`/api/quarantine?gateway=${encodeURIComponent(gatewayId)}`);
      this.render(r.gateways[0]);
    } catch (err) {
      this.summary.textContent = `Could not load the quarantine: ${err.message}`;
      this.tbody.replaceChildren();
    }
    this.section.dataset.loaded = "true";
    this.section.scrollIntoView({ block: "nearest" });
  }

  render(g) {
    const counts = Object.entries(g?.counts ?? {});
    const total = counts.reduce((n, [, c]) => n + c, 0);
    this.summary.textContent =
      total === 0
        ? "Nothing quarantined (as of the gateway's latest report)."
        : `${total} quarantined: ${counts.map(([k, c]) => `${k} ${c}`).join(", ")}. ` +
          `The newest ${g.recent.length} below, as the gateway's latest report carried them.`;
    this.tbody.replaceChildren(
      ...(g?.recent ?? []).map((q) => {
        const tr = document.createElement("tr");
        const cells = [dateTime(q.receivedAt), q.reason, q.source, q.detail];
        for (const text of cells) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        const td = document.createElement("td");
        const pre = document.createElement("pre");
        pre.className = "payload";
        pre.textContent = q.payload;
        td.append(pre);
        if (q.payloadBytes > new TextEncoder().encode(q.payload).length) {
          const cut = document.createElement("div");
          cut.className = "muted";
          cut.textContent = `first part of ${q.payloadBytes} bytes`;
          td.append(cut);
        }
        tr.append(td);
        return tr;
      }),
    );
  }
}
