// A signed-in WebSocket that reconnects with capped, jittered exponential backoff.
//
// Used by the dispatch and crew pages. A refusal by the hub (invalid or expired token,
// forbidden) stops the retries: reconnecting with the same token would be refused again.

import { openSocket } from "./session.js";

const REFUSALS = new Set(["invalid_token", "forbidden", "room_full", "not_a_member"]);

/** Delay before retry number `failures` (1, 2, ...): min·2^(n-1), capped, with ±25 % jitter. */
export function backoffMs(failures, minMs = 500, maxMs = 10_000, random = Math.random) {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.75 + 0.5 * random()));
}

export class LiveSocket {
  /**
   * @param {string} path socket path on this host, e.g. "/ws/fleet"
   * @param {(message: object) => void} onMessage each parsed message
   * @param {{onState?: (state: string, detail?: string) => void, extra?: object}} options
   *   onState gets "connecting", "live", "retrying" (detail: seconds), "refused" (detail: why)
   */
  constructor(path, onMessage, { onState = () => {}, extra = {} } = {}) {
    this.path = path;
    this.onMessage = onMessage;
    this.onState = onState;
    this.extra = extra;
    this.failures = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = false;
    this.refused = false;
  }

  start() {
    this.stopped = false;
    this.refused = false;
    this.connect();
    return this;
  }

  connect() {
    if (this.stopped) return;
    this.onState("connecting");
    let opened = false;
    this.socket = openSocket(this.path, (message) => {
      if (message.type === "error" && REFUSALS.has(message.code)) {
        this.refused = true;
        this.onState("refused", message.message ?? message.code);
        return;
      }
      if (!opened) { opened = true; this.failures = 0; this.onState("live"); }
      this.onMessage(message);
    }, {
      extra: this.extra,
      onClose: () => {
        this.socket = null;
        if (this.stopped || this.refused) return;
        this.failures += 1;
        const delay = backoffMs(this.failures);
        this.onState("retrying", (delay / 1000).toFixed(1));
        this.timer = setTimeout(() => this.connect(), delay);
      },
    });
  }

  /** Send `message` if the socket is open; false when it is not (the caller shows that). */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
    this.socket = null;
  }
}
