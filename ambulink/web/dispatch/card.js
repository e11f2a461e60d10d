// The selected unit's card: status and its history, case and destination, open alarms with an
// acknowledge button, and a small graph of the link (RTT, loss, uplink bitrate) over 10 min.

import { alarmTitle } from "/web/js/alarm_text.js";
import { formatAge } from "./list.js";

const GRAPH_S = 600;
const SERIES = [
  { key: "rtt_ms", label: "RTT", unit: "ms", colour: "#1565c0" },
  { key: "loss_pct", label: "loss", unit: "%", colour: "#c62828" },
  { key: "uplink_kbps", label: "uplink", unit: "kbps", colour: "#2e7d32" },
];

function text(tag, content, cls) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (cls) node.className = cls;
  return node;
}

function clock(unixS) { return unixS ? new Date(unixS * 1000).toLocaleTimeString() : "—"; }

export class UnitCard {
  /** @param {HTMLElement} root  @param {{onAck: (alarmId: string) => boolean}} options */
  constructor(root, { onAck = () => false } = {}) {
    this.root = root;
    this.onAck = onAck;
  }

  render(state, unitId) {
    const u = unitId ? state.units.get(unitId) : null;
    this.root.hidden = !u;
    if (!u) { this.root.replaceChildren(); this.key = null; return; }
    // Rebuilt only when something shown changed (the data age ticks on its own): buttons stay put.
    const key = JSON.stringify([u.unit_id, u.status, u.status_since, u.case_id, u.destination, u.eta_s, u.link,
      u.link_history.length, u.status_history.length, u.rejected, state.openAlarms(u), state.hospitals.get(u.destination)]);
    if (key === this.key) return;
    this.key = key;
    this.root.dataset.unitId = u.unit_id;
    const hospital = u.destination ? state.hospitals.get(u.destination) : null;
    const facts = document.createElement("dl");
    const fact = (name, value, cls) => facts.append(text("dt", name), text("dd", value, cls));
    fact("status", `${u.status.replace(/_/g, " ")} since ${clock(u.status_since)}`, "status");
    fact("case", u.case_id ?? "none", "case");
    fact("destination", hospital ? hospital.name : u.destination ?? "—");
    fact("ETA", u.eta_s != null ? `${Math.round(u.eta_s / 60)} min (straight line)` : "—");
    fact("data age", formatAge(state.dataAge(u)), "age");
    fact("link", u.link ? `${u.link.quality} · ${u.link.radio} · ${Math.round(u.link.rtt_ms)} ms · ${u.link.loss_pct.toFixed(1)} % loss · ${Math.round(u.link.uplink_kbps)} kbps` : "no report");
    fact("frames waiting", u.link?.buffered_frames != null ? String(u.link.buffered_frames) : "—");
    if (u.rejected) fact("rejected reports", String(u.rejected));

    const alarms = state.openAlarms(u);
    const alarmList = document.createElement("ul");
    alarmList.className = "alarms";
    for (const a of alarms) {
      const li = text("li", `${alarmTitle(a)} (${a.priority})${a.phase === "cleared" ? " cleared" : ""}`, `p-${a.priority}`);
      li.dataset.alarmId = a.alarm_id;
      if (a.acks?.length) li.append(text("span", ` — acknowledged by ${a.acks.map((k) => k[0]).join(", ")}`, "acked"));
      else {
        const ack = text("button", "Acknowledge", "ack");
        ack.addEventListener("click", () => { if (!this.onAck(a.alarm_id)) ack.textContent = "not connected — retry"; });
        li.append(" ", ack);
      }
      alarmList.append(li);
    }
    if (!alarms.length) alarmList.append(text("li", "no open alarms", "none"));

    const history = document.createElement("ol");
    history.className = "history";
    for (const h of [...u.status_history].reverse()) history.append(text("li", `${clock(h.at)} ${h.status.replace(/_/g, " ")}`));

    const canvas = document.createElement("canvas");
    canvas.width = 320; canvas.height = 110;
    canvas.className = "link-graph";
    canvas.setAttribute("aria-label", "link over the last 10 minutes: RTT, loss and uplink bitrate");
    const legend = document.createElement("div");
    legend.className = "legend";
    this.root.replaceChildren(text("h2", u.unit_id), facts, text("h3", "Open alarms"), alarmList,
      text("h3", "Link, last 10 min"), canvas, legend, text("h3", "Status history"), history);
    this.drawLink(canvas, legend, u.link_history);
  }

  drawLink(canvas, legend, samples) {
    const g = canvas.getContext("2d");
    const { width: w, height: h } = canvas;
    g.clearRect(0, 0, w, h);
    g.strokeStyle = "#ccc"; g.strokeRect(0.5, 0.5, w - 1, h - 1);
    const end = samples.length ? Math.max(...samples.map((s) => s.at)) : 0;
    const recent = samples.filter((s) => s.at >= end - GRAPH_S);
    canvas.dataset.points = String(recent.length);
    legend.replaceChildren();
    for (const series of SERIES) {
      const values = recent.map((s) => s[series.key]).filter(Number.isFinite);
      const top = Math.max(1, ...values);
      g.strokeStyle = series.colour; g.lineWidth = 1.5; g.beginPath();
      recent.forEach((s, i) => {
        const x = w - ((end - s.at) / GRAPH_S) * w, y = h - 4 - ((s[series.key] ?? 0) / top) * (h - 8);
        i ? g.lineTo(x, y) : g.moveTo(x, y);
      });
      g.stroke();
      const last = values.at(-1);
      const item = text("span", `${series.label} ${last == null ? "—" : Math.round(last * 10) / 10} ${series.unit} (max ${Math.round(top)})`);
      item.style.color = series.colour;
      legend.append(item);
    }
  }
}
