// The dispatch page's state: units, hospitals, weather cells and alarms, merged from the
// sockets so that a bad update never replaces a good one (last good position, status and age).

import { PRIORITY_RANK, byUrgency, rankOf } from "/web/js/alarm_order.js";
import { isGoodPosition } from "./geo.js";

export const STATUSES = ["available", "dispatched", "en_route", "on_scene", "transporting", "at_hospital", "out_of_service"];

export class FleetState {
  constructor(now = () => Date.now()) {
    this.now = now;
    this.units = new Map();      // unit_id -> Unit (as merged) + receivedAt (ms)
    this.hospitals = new Map();  // hospital_id -> Hospital
    this.weather = [];           // [{lat, lon, quality, samples}]
    this.alarms = new Map();     // alarm_id -> newest alarm state from /ws/dispatch
    this.dropped = 0;            // updates (or parts of them) the page refused to show
  }

  /** Apply one /ws/fleet message; returns what changed ("fleet", "unit", ...) or null. */
  applyFleet(message) {
    switch (message.type) {
      case "fleet":
        for (const unit of message.units ?? []) this.mergeUnit(unit);
        this.hospitals = new Map((message.hospitals ?? []).filter(validHospital).map((h) => [h.hospital_id, h]));
        return "fleet";
      case "unit":
        return this.mergeUnit(message.unit) ? "unit" : null;
      case "hospital":
        if (!validHospital(message.hospital)) { this.dropped += 1; return null; }
        this.hospitals.set(message.hospital.hospital_id, message.hospital);
        return "hospital";
      case "weather":
        this.weather = (message.cells ?? []).filter((c) => isGoodPosition(c) && Number.isFinite(c.quality));
        return "weather";
      default:
        return null;
    }
  }

  /** Merge a Unit, keeping the last good position, status and data age when the new ones are bad. */
  mergeUnit(unit) {
    if (!unit || typeof unit.unit_id !== "string") { this.dropped += 1; return false; }
    const prev = this.units.get(unit.unit_id);
    const merged = { ...unit, receivedAt: this.now() };
    if (!isGoodPosition(unit.position)) {
      if (unit.position != null) this.dropped += 1;
      merged.position = prev?.position ?? null;
    } else if (prev?.position && Number.isFinite(prev.position.at) && Number.isFinite(unit.position.at)
               && unit.position.at < prev.position.at) {
      merged.position = prev.position;  // an older fix arriving late (e.g. redelivered): not shown
    }
    if (!STATUSES.includes(unit.status)) {
      this.dropped += 1;
      merged.status = prev?.status ?? "out_of_service";
      merged.status_since = prev?.status_since ?? null;
    }
    if (unit.data_age_s != null && !(Number.isFinite(unit.data_age_s) && unit.data_age_s >= 0)) {
      this.dropped += 1;
      merged.data_age_s = prev ? this.dataAge(prev) : null;
    }
    merged.status_history = Array.isArray(unit.status_history) ? unit.status_history : prev?.status_history ?? [];
    merged.link_history = Array.isArray(unit.link_history) ? unit.link_history : prev?.link_history ?? [];
    merged.open_alarms = Array.isArray(unit.open_alarms) ? unit.open_alarms : [];
    this.units.set(unit.unit_id, merged);
    return true;
  }

  /** Apply one /ws/dispatch message (alarms are idempotent by (id, counter)). */
  applyDispatch(message) {
    if (message.type !== "alarm" || !message.alarm?.alarm_id) return false;
    const known = this.alarms.get(message.alarm.alarm_id);
    if (known && known.counter >= message.alarm.counter) return false;
    this.alarms.set(message.alarm.alarm_id, message.alarm);
    return true;
  }

  /** Seconds since the unit's newest data reached the hub, ticking between updates. */
  dataAge(unit) {
    if (unit.data_age_s == null) return null;
    return unit.data_age_s + (this.now() - unit.receivedAt) / 1000;
  }

  /** The unit's open alarms: the hub's list joined with the full states from /ws/dispatch. */
  openAlarms(unit) {
    const byId = new Map(unit.open_alarms.map((a) => [a.alarm_id, { ...a, acks: [] }]));
    for (const alarm of this.alarms.values()) {
      if (unit.case_id && alarm.case_id === unit.case_id) {
        if (alarm.phase === "active" || alarm.acks.length === 0) byId.set(alarm.alarm_id, alarm);
        else byId.delete(alarm.alarm_id);
      }
    }
    return [...byId.values()].sort(byUrgency);
  }

  /** Highest priority of the unit's open alarms ("high", "medium", "low") or null. */
  topPriority(unit) {
    const ranks = this.openAlarms(unit).filter((a) => !(a.acks?.length)).map((a) => rankOf(a.priority));
    const rank = Math.max(rankOf(unit.top_priority), ...ranks, 0);
    return Object.keys(PRIORITY_RANK).find((k) => PRIORITY_RANK[k] === rank) ?? null;
  }
}

function validHospital(h) {
  return h != null && typeof h.hospital_id === "string" && Number.isFinite(h.lat) && Number.isFinite(h.lon)
    && Math.abs(h.lat) <= 90 && Math.abs(h.lon) <= 180;
}
