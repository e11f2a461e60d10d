// The case timeline: first medical contact, ECG, alarms, decisions, advice, notes, ETA and who
// joined, oldest first, from the room socket's `timeline` (at join) and `timeline_entry` messages.
// Entries are unique by entry_id, so a reconnect's full list replaces nothing twice.

const KIND_LABEL = {
  case_opened: "First medical contact", ecg_started: "ECG started", alarm: "Alarm",
  alarm_ack: "Alarm acknowledged", decision: "Decision", advice: "Advice to crew", note: "Note",
  eta: "ETA", member_joined: "Joined", member_left: "Left",
};
const DECISIONS = { confirm_stemi: "STEMI confirmed", activate_cath_lab: "Cath lab activated" };

export class Timeline {
  /** @param {HTMLElement} list  an <ol>; @param {HTMLElement|null} eta  shows the latest ETA */
  constructor(list, eta = null) {
    this.list = list;
    this.eta = eta;
    this.entries = new Map();
  }

  setAll(entries) {
    this.entries.clear();
    for (const entry of entries) this.entries.set(entry.entry_id, entry);
    this.render();
  }

  add(entry) {
    if (this.entries.has(entry.entry_id)) return;
    this.entries.set(entry.entry_id, entry);
    this.render();
  }

  render() {
    const sorted = [...this.entries.values()].sort((a, b) => a.at - b.at);
    this.list.replaceChildren(...sorted.map((e) => {
      const item = document.createElement("li");
      item.className = `entry ${e.kind}`;
      item.dataset.entryId = e.entry_id;
      item.dataset.kind = e.kind;
      if (e.kind === "decision") item.dataset.decision = e.data?.decision ?? "";
      const time = document.createElement("time");
      time.dateTime = new Date(e.at * 1000).toISOString();
      time.textContent = new Date(e.at * 1000).toLocaleTimeString();
      const what = document.createElement("b");
      what.textContent = e.kind === "decision" ? (DECISIONS[e.data?.decision] ?? "Decision") : (KIND_LABEL[e.kind] ?? e.kind);
      const text = document.createElement("span");
      text.textContent = [e.text, e.kind === "eta" && e.data?.eta_s !== undefined ? formatEta(e.data.eta_s) : ""].filter(Boolean).join(" — ");
      const by = document.createElement("small");
      by.textContent = e.by;
      item.append(time, " ", what, " ", text, " ", by);
      return item;
    }));
    this.list.scrollTop = this.list.scrollHeight;
    const eta = sorted.filter((e) => e.kind === "eta").pop();
    if (this.eta) this.eta.textContent = eta ? `ETA ${formatEta(eta.data?.eta_s, eta.at)}` : "";
  }
}

/** "12 min" for an ETA in seconds (counted from `at`, Unix s, when given). */
export function formatEta(etaS, at = null) {
  if (typeof etaS !== "number") return "";
  const left = at === null ? etaS : etaS - (Date.now() / 1000 - at);
  return left <= 0 ? "arriving" : `${Math.max(1, Math.round(left / 60))} min`;
}
