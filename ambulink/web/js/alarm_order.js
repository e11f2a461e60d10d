// One order for alarm lists on every page (IEC 60601-1-8: the highest priority first).

export const PRIORITY_RANK = { high: 3, medium: 2, low: 1 };

/** Rank of a priority name: high 3, medium 2, low 1, anything else 0. */
export function rankOf(priority) { return PRIORITY_RANK[priority] ?? 0; }

function stage(alarm) {
  if (alarm.phase === "cleared") return 2;                 // over: at the bottom
  return alarm.acks?.length ? 1 : 0;                      // still to acknowledge: on top
}

/** Comparator for a list someone works through: unacknowledged active alarms, then acknowledged
 * active ones, then cleared ones; within each, higher priority first, then the newest. */
export function byUrgency(a, b) {
  return stage(a) - stage(b) || rankOf(b.priority) - rankOf(a.priority) || b.raised_at - a.raised_at;
}
