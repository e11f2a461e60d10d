// What an alarm is, in words: one spelling for the consult banner, the crew panel and the
// dispatch card.

const NAMES = {
  asystole: "ASYSTOLE", vf: "VF", vt: "VT", stemi: "STEMI criteria", brady: "Bradycardia",
  tachy: "Tachycardia", pause: "Pause", af: "AF onset", lead_off: "Lead off", no_signal: "NO SIGNAL",
  link_degraded: "Link degraded", not_delivered: "Alarm not delivered", alarm_system_failure: "Alarm system failure",
};

/** The display name of an alarm kind ("lead_off" -> "Lead off"). */
export function alarmName(kind) { return NAMES[kind] ?? String(kind).replace(/_/g, " ").toUpperCase(); }

/** The name with what the evidence adds: the leads that are off ("Lead off: MLII, V1"). */
export function alarmTitle(alarm) {
  const leads = alarm.evidence?.leads ?? (alarm.evidence?.lead ? [alarm.evidence.lead] : null);
  const name = alarmName(alarm.kind);
  return alarm.kind === "lead_off" && Array.isArray(leads) && leads.length ? `${name}: ${leads.join(", ")}` : name;
}

/** The consult page's one-line notice for an analysis event, or null for none. */
export function analysisNotice(event) {
  if (event.kind === "episode_start") {
    return `${alarmName(String(event.label ?? "").toLowerCase())} started${event.delayed ? " (from backfill)" : ""}`;
  }
  if (event.kind === "analysis_lead") {
    return event.backup ? `analysis lead off: heart rate and rhythm now from ${event.lead}`
      : `heart rate and rhythm from ${event.lead} again`;
  }
  return null;
}
