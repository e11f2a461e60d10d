// One order for alarm lists on every page (IEC 60601-1-8: the highest priority first).

export const PRIORITY_RANK = { high: 3, medium: 2, low: 1 };

/** Rank of a priority name: high 3, medium 2, low 1, anything else 0. */
export function rankOf(priority) { return PRIORITY_RANK[priority] ?? 0; }

function stage(alarm) {
  const acked = Boolean(alarm.acks?.length);
  const active = alarm.phase !== "cleared";
  // A cleared HIGH alarm latches until acknowledged (the hub keeps redelivering it).
  if (!acked && (active || alarm.priority === "high")) return 0;
  return active ? 1 : 2;
}

/** Comparator for a list someone works through: alarms still to acknowledge (active, or HIGH and
 * latched), then acknowledged active ones, then the rest; within each, higher priority first,
 * then the newest. */
export function byUrgency(a, b) {
  return stage(a) - stage(b) || rankOf(b.priority) - rankOf(a.priority) || b.raised_at - a.raised_at;
}
