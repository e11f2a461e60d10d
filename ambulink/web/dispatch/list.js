// The unit list: one row per unit, sortable by alarm priority or by data age, with the data
// age ticking live between updates.

import { rankOf } from "/web/js/alarm_order.js";
import { STATUS_COLOURS } from "./map.js";

const STALE_S = 10; // ECG more than 10 s old at the hub: shown in red

export function formatAge(seconds) {
  if (seconds == null) return "—";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Units in display order: "priority" (highest alarm first, then oldest data) or "age". */
export function sortUnits(units, state, by) {
  const age = (u) => state.dataAge(u) ?? -1;
  const rank = (u) => rankOf(state.topPriority(u));
  return [...units].sort((a, b) => (by === "age" ? 0 : rank(b) - rank(a)) || age(b) - age(a)
    || a.unit_id.localeCompare(b.unit_id, undefined, { numeric: true }));
}

export class UnitList {
  constructor(tbody, { onSelect = () => {} } = {}) {
    this.tbody = tbody;
    this.onSelect = onSelect;
    this.sortBy = "priority";
  }

  render(state, selected) {
    // Rows whose content is unchanged are kept (not rebuilt), so a click is never lost to an
    // update arriving between press and release.
    const old = new Map([...this.tbody.rows].map((tr) => [tr.dataset.unitId, tr]));
    const rows = sortUnits(state.units.values(), state, this.sortBy).map((u) => {
      const key = JSON.stringify([u.status, u.case_id, u.link?.quality, u.link?.radio, state.topPriority(u),
        state.openAlarms(u).length, u.unit_id === selected]);
      const kept = old.get(u.unit_id);
      if (kept && kept.dataset.key === key) { this.tickRow(kept, u, state); return kept; }
      const tr = this.row(u, state, u.unit_id === selected);
      tr.dataset.key = key;
      return tr;
    });
    if (rows.some((tr, i) => this.tbody.rows[i] !== tr) || rows.length !== this.tbody.rows.length) {
      this.tbody.replaceChildren(...rows);
    }
  }

  row(u, state, selected) {
    const tr = document.createElement("tr");
    tr.dataset.unitId = u.unit_id;
    tr.tabIndex = 0;
    if (selected) tr.classList.add("selected");
    const priority = state.topPriority(u);
    const alarms = state.openAlarms(u);
    const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; };
    const status = cell(u.status.replace(/_/g, " "), "status");
    const dot = document.createElement("span");
    dot.className = "dot"; dot.style.background = STATUS_COLOURS[u.status] ?? "#757575";
    status.prepend(dot);
    const alarm = cell(alarms.length ? `${alarms.length} ${priority ?? ""}` : "—", `alarms${priority ? ` p-${priority}` : ""}`);
    const quality = u.link?.quality ?? "none";
    const age = cell("", "age");
    tr.append(cell(u.unit_id, "id"), status, cell(u.case_id ? u.case_id.slice(0, 8) : "—", "case"), alarm,
      cell(u.link ? `${quality} ${u.link.radio ?? ""}`.trim() : "—", u.link ? `link q-${quality}` : "link"), age);
    this.tickRow(tr, u, state);
    tr.addEventListener("click", () => this.onSelect(u.unit_id));
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter") this.onSelect(u.unit_id); });
    return tr;
  }

  /** Whether the rows are still in sorted order (ages tick, so the order by age can change). */
  inOrder(state) {
    const shown = [...this.tbody.rows].map((tr) => tr.dataset.unitId);
    const wanted = sortUnits(state.units.values(), state, this.sortBy).map((u) => u.unit_id);
    return shown.length === wanted.length && shown.every((id, i) => id === wanted[i]);
  }

  /** Update the data-age cells only (called twice a second). */
  tick(state) {
    for (const tr of this.tbody.rows) {
      const u = state.units.get(tr.dataset.unitId);
      if (u) this.tickRow(tr, u, state);
    }
  }

  tickRow(tr, u, state) {
    const age = state.dataAge(u);
    const td = tr.querySelector(".age");
    td.textContent = formatAge(age);
    td.dataset.age = age == null ? "" : age.toFixed(1);
    td.classList.toggle("stale", age != null && age > STALE_S);
  }
}
