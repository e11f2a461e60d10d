// Rendering of the crew page's panels: link and buffer, alarms, advice and decisions.

import { byUrgency } from "/web/js/alarm_order.js";
import { alarmTitle } from "/web/js/alarm_text.js";

function text(tag, content, cls) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (cls) node.className = cls;
  return node;
}

function clock(unixS) { return new Date(unixS * 1000).toLocaleTimeString(); }

/** Link quality, radio, RTT, loss, bitrate; frames waiting on the tablet; data age at the hub. */
export function renderLink(root, unit, dataAge) {
  const link = unit?.link;
  const rows = [
    ["link", link ? `${link.quality} (${link.radio})` : "no report", `q-${link?.quality ?? "none"}`, "quality"],
    ["round trip", link ? `${Math.round(link.rtt_ms)} ms` : "—", "", "rtt"],
    ["loss", link ? `${link.loss_pct.toFixed(1)} %` : "—", "", "loss"],
    ["uplink", link ? `${Math.round(link.uplink_kbps)} kbps` : "—", "", "uplink"],
    ["frames waiting", link ? String(link.buffered_frames) : "—", link?.buffered_frames ? "waiting" : "", "buffered"],
    ["data age at hub", dataAge == null ? "—" : `${dataAge.toFixed(1)} s`, dataAge != null && dataAge > 10 ? "stale" : "", "data-age"],
  ];
  root.replaceChildren(...rows.map(([name, value, cls, key]) => {
    const div = text("div", "", `fact ${cls}`);
    div.dataset.key = key;
    if (key === "data-age") div.dataset.age = dataAge == null ? "" : dataAge.toFixed(1);
    div.append(text("span", name), text("b", value));
    return div;
  }));
}

/** The case's alarms, the ones to act on first (`byUrgency`), with who acknowledged;
 * unacknowledged ones get a button. */
export function renderAlarms(root, alarms, onAck) {
  const shown = [...alarms].sort(byUrgency);
  if (!shown.length) { root.replaceChildren(text("li", "no alarms", "none")); return; }
  root.replaceChildren(...shown.map((a) => {
    const li = text("li", "", `alarm p-${a.priority}${a.phase === "cleared" ? " cleared" : ""}`);
    li.dataset.alarmId = a.alarm_id;
    li.append(text("b", `${alarmTitle(a)}${a.phase === "cleared" ? " (cleared)" : ""}`),
      text("span", ` ${a.priority} · since ${clock(a.onset_at)}`));
    if (a.acks.length) {
      // Ack times are the hub's alarm clock (monotonic), comparable with raised_at only.
      const after = ([who, , at]) => `${who} ${Math.max(0, Math.round(at - a.raised_at))} s after it was raised`;
      li.append(text("span", `acknowledged by ${a.acks.map(after).join(", ")}`, "acks"));
    } else {
      const button = text("button", "Acknowledge", "ack");
      button.addEventListener("click", () => { if (!onAck(a.alarm_id)) button.textContent = "not connected"; });
      li.append(text("span", "not acknowledged", "acks none"), button);
    }
    return li;
  }));
}

/** Advice and decisions from the consult room, newest first. */
export function renderAdvice(root, entries) {
  const shown = [...entries].sort((a, b) => b.at - a.at);
  if (!shown.length) { root.replaceChildren(text("li", "no advice yet", "none")); return; }
  root.replaceChildren(...shown.map((e) => {
    const what = e.kind === "decision" ? (e.data?.decision ?? "decision").replace(/_/g, " ") : "advice";
    const li = text("li", "", `entry ${e.kind}`);
    li.dataset.entryId = e.entry_id;
    li.append(text("b", what.toUpperCase()), text("span", ` ${clock(e.at)} · ${e.by}`, "by"));
    if (e.text) li.append(text("p", e.text));
    return li;
  }));
}
