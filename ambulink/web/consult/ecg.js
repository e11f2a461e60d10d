// A live ECG on a canvas at 25 mm/s and 10 mm/mV on the red/pink 1 mm / 5 mm grid.
//
// Reusable by every page: `new EcgView(canvas)`, then `setStream({fs, gain, leads})` once (from
// GET /api/cases/{id}/streams), and `addWaveform(message)` for each `waveform` message of a case
// or room socket (samples are leads × samples in ADC units; mV = ADC / gain).
//
// Layouts: "12-lead" (the standard 3 × 4 page, each column 2.5 s of the last 10 s, and a lead II
// rhythm strip) when the stream has the twelve standard leads, else one 10 s strip per selected
// lead (`selectLeads`). The newest sample is at the right edge.
//
// Backfill: after an outage the tablet resends what the hub missed while live frames go on, so
// frames older than the live edge arrive late. They are drawn in blue, and `backfill` says how
// far behind the newest late frame was and when it came. Data age is the time since the live edge
// last advanced: it grows during an outage and drops back when live frames resume.

export const MM_PER_S = 25;
export const MM_PER_MV = 10;
export const WINDOW_S = 10;
export const STANDARD_12 = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"];
const ROW_MM = 30;                 // height of one row of traces (3 mV)
const LATE_BADGE_MS = 3000;        // "backfilling" stays up this long after the last late frame
const COLOURS = { minor: "#f7c6cf", major: "#e8798d", trace: "#111", late: "#1456c8", gap: "#999", label: "#333" };

/** The standard name of a lead label ("ii" → "II", "aVR" → "AVR", "MLII" stays "MLII"). */
export function standardName(name) { return String(name).trim().toUpperCase(); }

/** Lead names as shown: a name the stream repeats gets its position ("ECG 1", "ECG 2"), as
 * VFDB's two "ECG" channels do; unique names are kept. */
export function distinctLeadNames(leads) {
  const count = new Map();
  for (const name of leads) count.set(name, (count.get(name) ?? 0) + 1);
  return leads.map((name, i) => (count.get(name) > 1 ? `${name} ${i + 1}` : name));
}

/** Indices of the twelve standard leads in `leads`, in standard order, or null if any is missing. */
export function twelveLeadIndices(leads) {
  const names = leads.map(standardName);
  const indices = STANDARD_12.map((n) => names.indexOf(n));
  return indices.every((i) => i >= 0) ? indices : null;
}

/** One lead's last `capacity` samples (mV, NaN where nothing arrived) by absolute sample index. */
class LeadRing {
  constructor(capacity) {
    this.capacity = capacity;
    this.values = new Float32Array(capacity).fill(NaN);
    this.late = new Uint8Array(capacity);
  }
  clear(from, to) {                 // absolute indices [from, to)
    for (let i = Math.max(from, to - this.capacity); i < to; i++) {
      const k = i % this.capacity;
      this.values[k] = NaN; this.late[k] = 0;
    }
  }
  write(first, samples, scale, late, oldest) {
    for (let j = Math.max(0, oldest - first); j < samples.length; j++) {
      const k = (first + j) % this.capacity;
      this.values[k] = samples[j] / scale; this.late[k] = late ? 1 : 0;
    }
  }
}

export class EcgView {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{pxPerMm?: number, streamId?: number, now?: () => number}} options
   */
  constructor(canvas, { pxPerMm = 4, streamId = null, now = () => performance.now() } = {}) {
    this.canvas = canvas;
    this.pxPerMm = pxPerMm;
    this.streamId = streamId;
    this.now = now;
    this.stream = null;           // {fs, gain, leads}
    this.rings = [];
    this.edge = -1;               // one past the newest sample (absolute index); -1 before data
    this.edgeAt = null;           // now() when the edge last advanced
    this.backfill = { active: false, behindS: 0, lateSamples: 0, lastAt: null };
    this.leadOff = 0;
    this.layout = "strips";
    this.selected = [0];
    this.framesDrawn = 0;
    this.skipped = 0;
    this._dirty = true;
    this._raf = null;
    this._resize();
  }

  /** The stream's sampling rate (Hz), gain (ADC units per mV) and lead names. */
  setStream({ fs, gain, leads, stream_id = null }) {
    this.stream = { fs, gain, leads: distinctLeadNames(leads) };
    if (this.streamId === null && stream_id !== null) this.streamId = stream_id;
    this.rings = leads.map(() => new LeadRing(Math.ceil(fs * WINDOW_S)));
    this.edge = -1;
    const twelve = twelveLeadIndices(leads);
    if (twelve) { this.layout = "12-lead"; this.selected = twelve; }
    else { this.layout = "strips"; this.selected = [0]; }
    this._resize();
    this.requestDraw();
  }

  /** Layout "12-lead" (needs the standard leads) or "strips" of the `indices` leads. */
  selectLeads(indices, layout = "strips") {
    if (!this.stream) return;
    if (layout === "12-lead") {
      const twelve = twelveLeadIndices(this.stream.leads);
      if (!twelve) throw new Error("this stream does not carry the twelve standard leads");
      this.layout = "12-lead"; this.selected = twelve;
    } else {
      const valid = indices.filter((i) => i >= 0 && i < this.stream.leads.length);
      this.layout = "strips"; this.selected = valid.length ? valid : [0];
    }
    this._resize();
    this.requestDraw();
  }

  /** A `waveform` message ({streams: [{stream_id, fs, gain, chunks: [{first_sample, lead_off, samples}]}]}). */
  addWaveform(message) {
    for (const s of message.streams ?? []) {
      if (this.streamId !== null && s.stream_id !== this.streamId) continue;
      if (!this.stream || this.stream.fs !== s.fs || this.rings.length === 0) {
        const n = s.chunks[0]?.samples.length ?? 1;
        const leads = this.stream?.leads?.length === n ? this.stream.leads : Array.from({ length: n }, (_, i) => `lead ${i + 1}`);
        this.setStream({ fs: s.fs, gain: s.gain, leads, stream_id: s.stream_id });
      }
      for (const chunk of s.chunks) this._addChunk(chunk, s.gain);
    }
    this.requestDraw();
  }

  /** Waveform frames the hub skipped for this member (slow link), from `waveform_skipped`. */
  noteSkipped(frames) { this.skipped = frames; }

  _addChunk(chunk, gain) {
    const n = chunk.samples[0]?.length ?? 0;
    if (!n) return;
    const first = chunk.first_sample, end = first + n;
    const capacity = this.rings[0].capacity;
    const late = this.edge >= 0 && first < this.edge;
    if (end > this.edge) {
      if (this.edge >= 0) for (const ring of this.rings) ring.clear(this.edge, end);
      this.edge = end;
      this.edgeAt = this.now();
      this.leadOff = chunk.lead_off ?? 0;
    }
    if (late) {
      this.backfill = {
        active: true,
        behindS: (this.edge - first) / this.stream.fs,
        lateSamples: this.backfill.lateSamples + n,
        lastAt: this.now(),
      };
    }
    const oldest = this.edge - capacity;
    if (end <= oldest) return;   // too old for the window (still counted above)
    chunk.samples.forEach((leadSamples, i) => this.rings[i]?.write(first, leadSamples, gain, late, oldest));
  }

  /** Seconds since the newest sample arrived (null before any data). */
  dataAgeS() { return this.edgeAt === null ? null : (this.now() - this.edgeAt) / 1000; }

  /** True while late (backfilled) frames keep arriving. */
  backfilling() {
    return this.backfill.lastAt !== null && this.now() - this.backfill.lastAt < LATE_BADGE_MS;
  }

  requestDraw() {
    this._dirty = true;
    if (this._raf !== null) return;
    const schedule = typeof requestAnimationFrame === "function" ? requestAnimationFrame : (f) => setTimeout(f, 16);
    this._raf = schedule(() => { this._raf = null; if (this._dirty) this.draw(); });
  }

  _rows() {
    if (this.layout === "12-lead") return 4;           // 3 rows of 4 leads + the rhythm strip
    return this.selected.length;
  }

  _resize() {
    const width = Math.round(WINDOW_S * MM_PER_S * this.pxPerMm);
    const height = Math.round(Math.max(1, this._rows()) * ROW_MM * this.pxPerMm);
    if (this.canvas.width !== width) this.canvas.width = width;
    if (this.canvas.height !== height) this.canvas.height = height;
  }

  draw() {
    this._dirty = false;
    const g = this.canvas.getContext("2d");
    const { width, height } = this.canvas;
    g.drawImage(this._gridImage(width, height), 0, 0);
    if (!this.stream || this.edge < 0) return;
    const rowPx = ROW_MM * this.pxPerMm;
    const leads = this.stream.leads;
    if (this.layout === "12-lead") {
      const colPx = width / 4, colS = WINDOW_S / 4;
      this.selected.forEach((lead, k) => {
        const row = k % 3, col = Math.floor(k / 3);
        const start = this.edge - Math.round((WINDOW_S - col * colS) * this.stream.fs);
        this._trace(g, lead, start, Math.round(colS * this.stream.fs), col * colPx, (row + 0.5) * rowPx);
        this._label(g, STANDARD_12[k], col * colPx, row * rowPx);
        if (col) { g.strokeStyle = COLOURS.label; g.beginPath(); g.moveTo(col * colPx, (row + 0.2) * rowPx); g.lineTo(col * colPx, (row + 0.8) * rowPx); g.stroke(); }
      });
      const ii = this.selected[1];
      this._trace(g, ii, this.edge - WINDOW_S * this.stream.fs, WINDOW_S * this.stream.fs, 0, 3.5 * rowPx);
      this._label(g, "II (rhythm)", 0, 3 * rowPx);
    } else {
      this.selected.forEach((lead, row) => {
        this._trace(g, lead, this.edge - WINDOW_S * this.stream.fs, WINDOW_S * this.stream.fs, 0, (row + 0.5) * rowPx);
        const off = (this.leadOff >> lead) & 1 ? " — LEAD OFF" : "";
        this._label(g, `${leads[lead]}${off}`, 0, row * rowPx);
      });
    }
    this.framesDrawn++;
  }

  /** The paper (white, 1 mm and 5 mm lines), drawn once per canvas size. */
  _gridImage(width, height) {
    if (this._paper?.width === width && this._paper?.height === height) return this._paper;
    const paper = document.createElement("canvas");
    paper.width = width; paper.height = height;
    const g = paper.getContext("2d");
    g.fillStyle = "#fff"; g.fillRect(0, 0, width, height);
    this._grid(g, width, height);
    this._paper = paper;
    return paper;
  }

  _grid(g, width, height) {
    const mm = this.pxPerMm;
    for (const major of [false, true]) {
      g.strokeStyle = major ? COLOURS.major : COLOURS.minor;
      g.lineWidth = major ? 1 : 0.5;
      g.beginPath();
      for (let i = 0, x = 0; x <= width; i++, x = i * mm) if ((i % 5 === 0) === major) { g.moveTo(x + 0.5, 0); g.lineTo(x + 0.5, height); }
      for (let i = 0, y = 0; y <= height; i++, y = i * mm) if ((i % 5 === 0) === major) { g.moveTo(0, y + 0.5); g.lineTo(width, y + 0.5); }
      g.stroke();
    }
  }

  _label(g, text, x, y) {
    g.fillStyle = COLOURS.label;
    g.font = `${3 * this.pxPerMm}px system-ui, sans-serif`;
    g.fillText(text, x + 1.5 * this.pxPerMm, y + 4 * this.pxPerMm);
  }

  /**
   * Draw `count` samples of `lead` from absolute index `start`, at x0 (px) with its baseline
   * (the median of what is drawn) at y0 (px). One min/max pair per pixel column; gaps stay open;
   * backfilled columns in blue.
   */
  _trace(g, lead, start, count, x0, y0) {
    const ring = this.rings[lead];
    if (!ring) return;
    const fs = this.stream.fs, pxPerSample = (MM_PER_S * this.pxPerMm) / fs;
    const pxPerMv = MM_PER_MV * this.pxPerMm;
    const oldest = this.edge - ring.capacity;
    const seen = [];
    for (let i = Math.max(start, oldest); i < start + count && i < this.edge; i += 7) {
      const v = ring.values[i % ring.capacity];
      if (!Number.isNaN(v)) seen.push(v);
    }
    if (!seen.length) return;
    seen.sort((a, b) => a - b);
    const base = seen[seen.length >> 1];
    const columns = Math.ceil(count * pxPerSample);
    let pen = null;                                   // "trace" or "late" path in progress
    const flush = () => { if (pen) { g.stroke(); pen = null; } };
    let lastY = null;
    for (let c = 0; c < columns; c++) {
      const from = start + Math.floor(c / pxPerSample), to = Math.min(start + Math.floor((c + 1) / pxPerSample), start + count);
      let lo = Infinity, hi = -Infinity, late = 0;
      for (let i = Math.max(from, oldest); i < Math.max(to, from + 1) && i < this.edge; i++) {
        const k = i % ring.capacity, v = ring.values[k];
        if (Number.isNaN(v)) continue;
        if (v < lo) lo = v; if (v > hi) hi = v; late |= ring.late[k];
      }
      if (lo === Infinity) { flush(); lastY = null; continue; }
      const kind = late ? "late" : "trace";
      if (pen !== kind) {
        flush();
        g.strokeStyle = COLOURS[kind]; g.lineWidth = late ? 1.6 : 1.2; g.beginPath();
        pen = kind;
        if (lastY !== null) g.moveTo(x0 + c - 1, lastY);
      }
      const yHi = y0 - (hi - base) * pxPerMv, yLo = y0 - (lo - base) * pxPerMv;
      if (lastY === null) g.moveTo(x0 + c, yHi);
      g.lineTo(x0 + c, yHi); g.lineTo(x0 + c, yLo);
      lastY = yLo;
    }
    flush();
  }
}
