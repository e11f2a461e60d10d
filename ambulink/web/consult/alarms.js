// The alarm banner: one bar per unacknowledged alarm, coloured by priority (high first), with
// Acknowledge and Pause audio; a receipt goes back for every alarm state shown. Alarm events are
// idempotent by (alarm_id, counter): repeats after a reconnect change nothing.
//
// Sound: high-priority alarms that are active, unacknowledged and not paused beep (WebAudio;
// browsers only start audio after a click on the page, so the first click arms it). Audio pause
// is the hub's (`audio_paused_until`, set for everyone by any member's pause, cleared by the hub
// when it ends).

import { rankOf } from "/web/js/alarm_order.js";
import { alarmTitle } from "/web/js/alarm_text.js";

export class AlarmBanner {
  /**
   * @param {HTMLElement} element  where the banners go
   * @param {(message: object) => void} send  sends a message on the member socket
   * @param {{onEvidence?: (alarm: object) => void, canAck?: () => boolean}} hooks
   */
  constructor(element, send, { onEvidence = () => {}, canAck = () => true } = {}) {
    this.element = element;
    this.send = send;
    this.onEvidence = onEvidence;
    this.canAck = canAck;
    this.alarms = new Map();          // alarm_id -> newest state
    this.audio = null;
    this.sounding = false;
    document.addEventListener("click", () => this._armAudio(), { once: true });
    this._timer = setInterval(() => this._annunciate(), 1000);
  }

  /** An `alarm` message's `alarm` (alarm_to_json); returns false for a repeat. */
  handle(alarm) {
    const known = this.alarms.get(alarm.alarm_id);
    if (known && known.counter >= alarm.counter) return false;
    this.alarms.set(alarm.alarm_id, alarm);
    this.send({ type: "receipt", alarm_id: alarm.alarm_id });
    if (alarm.evidence && alarm.evidence.stream_id !== undefined) this.onEvidence(alarm);
    this.render();
    this._annunciate();
    return true;
  }

  /** Alarms to show: unacknowledged ones, active or latched after clearing, high first. */
  shown() {
    return [...this.alarms.values()].filter((a) => a.acks.length === 0)
      .sort((a, b) => rankOf(b.priority) - rankOf(a.priority) || a.onset_at - b.onset_at);
  }

  render() {
    const canAck = this.canAck();
    this.element.replaceChildren(...this.shown().map((a) => {
      const banner = document.createElement("div");
      banner.className = `banner ${a.priority}${a.phase === "cleared" ? " cleared" : ""}`;
      banner.dataset.alarmId = a.alarm_id;
      banner.dataset.kind = a.kind;
      banner.setAttribute("role", "alert");
      const text = document.createElement("span");
      text.className = "what";
      const when = new Date(a.onset_at * 1000).toLocaleTimeString();
      text.textContent = `${alarmTitle(a)} — ${a.priority} priority${a.phase === "cleared" ? " (cleared)" : ""}` +
        `${a.delayed ? " — delayed, from backfill" : ""} since ${when}`;
      banner.append(text);
      if (paused(a)) {
        const paused = document.createElement("span");
        paused.className = "paused";
        paused.textContent = `audio paused by ${a.audio_paused_by ?? "a member"}`;
        banner.append(paused);
      }
      const ack = button("Acknowledge", "ack", () => this.send({ type: "alarm_ack", alarm_id: a.alarm_id }));
      const pause = button("Pause audio 2 min", "pause", () => this.send({ type: "audio_pause", alarm_id: a.alarm_id, seconds: 120 }));
      ack.disabled = pause.disabled = !canAck;
      banner.append(ack, pause);
      return banner;
    }));
  }

  /** Whether a high-priority alarm should be sounding now. */
  shouldSound() {
    return this.shown().some((a) => a.priority === "high" && a.phase === "active" && !paused(a));
  }

  _armAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (Context && !this.audio) this.audio = new Context();
  }

  _annunciate() {
    this.sounding = this.shouldSound();
    this.element.dataset.sounding = String(this.sounding);
    if (!this.sounding || !this.audio || this.audio.state !== "running") return;
    if (this._lastBurst && Date.now() - this._lastBurst < 2500) return;
    this._lastBurst = Date.now();
    // IEC 60601-1-8 style high-priority burst: pulses at ~960 Hz.
    const t0 = this.audio.currentTime;
    for (let i = 0; i < 5; i++) {
      const osc = this.audio.createOscillator(), gain = this.audio.createGain();
      osc.frequency.value = 960; gain.gain.value = 0.15;
      osc.connect(gain).connect(this.audio.destination);
      osc.start(t0 + i * 0.15); osc.stop(t0 + i * 0.15 + 0.1);
    }
  }

  close() { clearInterval(this._timer); this.audio?.close(); }
}

/** `audio_paused_until` is on the hub's ledger clock, not comparable with the browser's; the hub
 * sets it back to null (a new counter) when the pause ends, so non-null means paused now. */
function paused(alarm) { return alarm.audio_paused_until !== null && alarm.audio_paused_until !== undefined; }

function button(text, name, onclick) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = text; b.className = name; b.onclick = onclick;
  return b;
}
