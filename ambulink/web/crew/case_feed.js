// The crew's view of its case: alarms (with acknowledgements) and the consult room's timeline,
// from the room's member socket /ws/rooms/{case_id}. While the room socket is not available
// (refused or absent), alarms come from the case's viewer socket /ws/cases/{case_id} instead.

import { LiveSocket } from "../js/live.js";

const FALLBACK_AFTER = 2; // room socket closes without a message before falling back

export class CaseFeed {
  constructor(caseId, { onChange = () => {}, onState = () => {} } = {}) {
    this.caseId = caseId;
    this.onChange = onChange;
    this.onState = onState;
    this.alarms = new Map();   // alarm_id -> newest state (idempotent by (id, counter))
    this.timeline = [];        // room timeline entries, oldest first
    this.socket = null;
    this.silentCloses = 0;
  }

  start() { this.open(`/ws/rooms/${encodeURIComponent(this.caseId)}`); return this; }

  open(path) {
    let heard = false;
    this.path = path;
    this.socket = new LiveSocket(path, (m) => { heard = true; this.silentCloses = 0; this.handle(m); }, {
      onState: (state, detail) => {
        const room = path.startsWith("/ws/rooms/");
        if (room && (state === "refused" || (state === "retrying" && !heard && ++this.silentCloses >= FALLBACK_AFTER))) {
          this.socket.stop();
          this.onState("alarms only");
          this.open(`/ws/cases/${encodeURIComponent(this.caseId)}`);
          return;
        }
        this.onState(state === "retrying" ? `reconnecting in ${detail} s` : state);
      },
    }).start();
  }

  handle(message) {
    switch (message.type) {
      case "alarm": {
        const alarm = message.alarm;
        const known = this.alarms.get(alarm?.alarm_id);
        if (!alarm || (known && known.counter >= alarm.counter)) return;
        this.alarms.set(alarm.alarm_id, alarm);
        this.socket.send({ type: "receipt", alarm_id: alarm.alarm_id });
        break;
      }
      case "timeline":
        this.timeline = [...(message.entries ?? [])];
        break;
      case "timeline_entry":
        if (message.entry && !this.timeline.some((e) => e.entry_id === message.entry.entry_id)) this.timeline.push(message.entry);
        break;
      default:
        return;
    }
    this.onChange();
  }

  /** Acknowledge an alarm; false when the socket is not open. */
  ack(alarmId) { return this.socket?.send({ type: "alarm_ack", alarm_id: alarmId }) ?? false; }

  stop() { this.socket?.stop(); this.socket = null; }
}
