"""12-lead ST analysis and STEMI detection (batch ``analyze`` and streaming ``StMonitor``).

``analyze`` takes a window (the last 10 s at most) of a 12- to 18-lead ECG in mV:
1. leads judged fit (not flat, not railed), powerline hum notched out of the leads that have
   it, R peaks found on the first fit lead of II, V5, I, ...;
2. median beat of every lead from the clean beats (``ambulink.signal.median_beat``): ectopic,
   premature and noisy beats left out, baseline removed by a spline through the PR levels;
3. global QRS onset and J point from the spatial velocity of the median beats;
4. per lead, ST deviation at J, J+60 and J+80 ms from the PR baseline (mV) and the ST slope;
   a lead whose beat-to-beat ST level varies by more than 0.1 mV is noisy, not evaluable;
5. the criteria of ``ambulink.signal.stemi`` (Fourth Universal Definition of MI) with the
   confounders (LBBB, pacing, LVH strain) that make them unreliable.
Elevation can only be called "new" by a reader with an older ECG; the reasons say what was seen.

``StMonitor`` re-runs ``analyze`` every 5 s (on a fixed sample grid) over the last 10 s of a
live stream and emits ``StemiSuspected`` / ``StemiCleared`` after two agreeing evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

from ambulink.errors import SignalError
from ambulink.signal.events import EvidenceWindow
from ambulink.signal.filters import remove_mains
from ambulink.signal.median_beat import MedianBeat, build_median_beat
from ambulink.signal.qrs import detect
from ambulink.signal.qt import qt_ms, qtc_bazett, t_wave_end_ms
from ambulink.signal.quality import FLAT_MV, RAILED_SHARE
from ambulink.signal.stemi import (
    LeadST,
    QrsShape,
    check_age,
    classify_slope,
    evaluate,
    find_confounders,
    normalise_sex,
)
from ambulink.signal.validation import check_fs, to_millivolts

__all__ = [
    "LeadST",
    "STResult",
    "StMonitor",
    "StemiCleared",
    "StemiEvent",
    "StemiSuspected",
    "analyze",
    "canonical_lead",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

WINDOW_S = 10.0
STANDARD = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
EXTRA = ("V7", "V8", "V9", "V3R", "V4R")
ALIASES = {name.lower(): name for name in STANDARD + EXTRA} | {
    "mli": "I",
    "mlii": "II",
    "ml2": "II",
    "mliii": "III",
}
R_PEAK_LEADS = ("II", "V5", "I", "V6", "aVF", "V4", "III", "V2", "V3", "aVL", "V1", "aVR")
NOISY_ST_MV = 0.10  # beat-to-beat spread of the ST level above which a lead is noisy
MEASURE_FS_HZ = 500.0  # slower input is interpolated to at least this rate before measuring
MEASURE_HALF_MS = 4.0  # ST levels are averaged over +/- this around each point
J_SLOPE_MS = 4.0  # the slope at the J point is taken over +/- this
MAX_SPAN_MV = 50.0  # a lead spanning more in 10 s is not in mV (QRS and wander stay far under)
NOT_MV = "samples not in mV? (µV or ADC units: convert, e.g. WFDB's p_signal)"
SPIKE_RATIO = 8.0  # pacing spike: pre-QRS sharpness this many times the lead's usual sharpness
WIDE_SPIKE_RATIO = 2.0  # ... or this many times when the QRS is wide (bipolar spikes are small)
WIDE_PACED_QRS_MS = 140.0  # QRS width from which the weaker spike evidence counts
T_FROM_MS, T_TO_MS = 80.0, 350.0  # T-wave peak searched this long after the J point
Q_NOISE_MV = 0.02  # an initial deflection smaller than this is not a Q wave
QT_LEADS = ("II", "V2", "V3", "V4", "V5")  # leads whose T-wave ends give the QT
P_FROM_MS, P_TO_MS = 250.0, 30.0  # the P wave is looked for this long before the QRS onset
REVERSED_P_MV = 0.02  # a P wave in lead I this negative (with a negative QRS): arms swapped?


def canonical_lead(name: str) -> str | None:
    """Standard spelling of a lead name (case-insensitive; MLII -> II), None if unknown."""
    return ALIASES.get(name.strip().lower().replace(" ", ""))


@dataclass(frozen=True, slots=True)
class STResult:
    """ST analysis of one window; ``evidence`` are its samples, ``r_peaks`` the beats used.

    Times: ``j_offset_ms`` (J point) and ``qrs_onset_offset_ms`` (negative) are ms after the
    R fiducial of the median beat; both NaN when not evaluable.
    """

    stemi: bool
    territories: tuple[str, ...]
    per_lead: dict[str, LeadST]
    reciprocal: tuple[str, ...]
    ischemic_depression: bool
    depression_territories: tuple[str, ...]
    confounders: tuple[str, ...]
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    evidence: EvidenceWindow
    r_peaks: IntArray
    j_offset_ms: float
    qrs_onset_offset_ms: float
    evaluable: bool
    why_not: str | None = None
    analysis_lead: str | None = None  # lead the R peaks were found on
    median_beats: dict[str, FloatArray] = field(default_factory=dict)  # mV, R at r_index
    r_index: int = 0
    median_fs_hz: float = math.nan  # rate of median_beats: fs, or fs interpolated to >= 500 Hz
    qt_ms: float = math.nan  # QRS onset to T end (tangent method); NaN when no T was timed
    qtc_ms: float = math.nan  # Bazett; NaN also when implausible (see ambulink.signal.qt)
    q_wave_territories: tuple[str, ...] = ()  # pathological Q waves (infarct of any age)


def _check_leads(leads: Any) -> list[str]:
    if isinstance(leads, str) or not isinstance(leads, Sequence):
        raise SignalError(f"leads must be a list of lead names, got {type(leads).__name__}")
    if not leads or not all(isinstance(name, str) for name in leads):
        raise SignalError(f"leads must be a non-empty list of names (str), got {leads!r}")
    return list(leads)


def _not_evaluable(
    why: str, per_lead: dict[str, LeadST], notes: list[str], evidence: EvidenceWindow
) -> STResult:
    return STResult(
        stemi=False,
        territories=(),
        per_lead=per_lead,
        reciprocal=(),
        ischemic_depression=False,
        depression_territories=(),
        confounders=(),
        reasons=(f"not evaluable: {why}",),
        notes=tuple(notes),
        evidence=evidence,
        r_peaks=np.zeros(0, dtype=np.int64),
        j_offset_ms=math.nan,
        qrs_onset_offset_ms=math.nan,
        evaluable=False,
        why_not=why,
    )


def _unusable(lead: str, reason: str) -> LeadST:
    nan = math.nan
    return LeadST(lead, nan, nan, nan, nan, "horizontal", False, reason)


def _raw_fault(x: FloatArray) -> str | None:
    """Why a raw lead cannot be used at all (flat, railed, or far too large for mV), else None."""
    span = float(np.ptp(x))
    if span < FLAT_MV:
        return f"flat line (peak-to-peak {span * 1000:.0f} µV): lead off?"
    if span > MAX_SPAN_MV:
        return f"peak-to-peak {span:.0f} mV, beyond any ECG: {NOT_MV}"
    railed = max(float(np.mean(x == x.max())), float(np.mean(x == x.min())))
    if railed > RAILED_SHARE:
        return f"railed amplifier ({railed:.0%} of samples at one extreme)"
    return None


def _st_spread(median: MedianBeat, column: int) -> float:
    """Beat-to-beat spread (robust SD, mV) of one lead's ST level at J+60 ms."""
    per_beat = median.per_beat_mv[:, :, column : column + 1]
    level = _level(per_beat, median, median.bounds.offset_ms + 60)[:, 0]
    st = level - per_beat[:, median.pr_segment, 0].mean(axis=1)
    return 1.4826 * float(np.median(np.abs(st - np.median(st))))


def _limb_reversal(median: MedianBeat, column: int, lead_i: LeadST, qrs: QrsShape) -> str | None:
    """A note when lead I has a negative P wave and a negative QRS: the sign of left and right
    arm electrodes swapped (or of dextrocardia), which mirrors the limb leads' ST too.

    On the 248 development records (PTB-XL, LUDB, PTB): 221 with LA/RA swapped are caught,
    and 1 as recorded (LUDB 72, sinus rhythm paced with P-synchrony).
    """
    onset = median.bounds.onset_ms
    beat = median.samples_mv[:, column]
    p_wave = beat[median.index(onset - P_FROM_MS) : median.index(onset - P_TO_MS)]
    if not p_wave.size or qrs.r_mv >= qrs.s_mv:
        return None
    p_wave = p_wave - lead_i.baseline_mv
    if float(p_wave[np.argmax(np.abs(p_wave))]) > -REVERSED_P_MV:
        return None
    return (
        "lead I has a negative P wave and a negative QRS: left and right arm electrodes "
        "swapped? (or dextrocardia) Check the limb electrodes; the limb leads' ST is mirrored "
        "if they are"
    )


def _find_median(
    window: FloatArray, fs_hz: float, order: list[int], use: NDArray[np.bool_]
) -> tuple[MedianBeat, int] | None:
    """Median beat from R peaks of the first of ``order``'s leads (up to 3 tried) that works."""
    for column in order[:3]:
        peaks = detect(window[:, column], fs_hz)
        if peaks.size < 3:
            continue
        median_rr_s = float(np.median(np.diff(peaks))) / fs_hz
        if not 0.27 <= median_rr_s <= 2.0:
            continue
        median = build_median_beat(window, fs_hz, peaks, use)
        if median is not None:
            return median, column
    return None


def _q_wave(qrs_mv: FloatArray, fs_hz: float) -> tuple[float, float]:
    """Initial negative deflection of a baseline-referenced QRS: (duration ms, depth mV)."""
    up = np.flatnonzero(qrs_mv > Q_NOISE_MV)
    end = int(up[0]) if up.size else qrs_mv.size
    depth = -float(qrs_mv[:end].min()) if end else 0.0
    if depth < Q_NOISE_MV:
        return 0.0, 0.0
    return end * 1000.0 / fs_hz, depth


def _level(beat_mv: FloatArray, median: MedianBeat, ms: float) -> FloatArray:
    """Mean over +/- 4 ms around ``ms`` after R, along the sample axis (-2)."""
    half = max(int(round(MEASURE_HALF_MS * median.fs_hz / 1000.0)), 0)
    i = median.index(ms)
    lo, hi = max(i - half, 0), min(i + half + 1, beat_mv.shape[-2])
    return np.asarray(beat_mv[..., lo:hi, :].mean(axis=-2), dtype=np.float64)


def _paced(
    window: FloatArray, fs_hz: float, median: MedianBeat, use: NDArray[np.bool_]
) -> str | None:
    """Ventricular pacing, said in words, or None.

    A pacing spike is the sharpest event of a beat and comes just before (or at) the QRS
    onset, in every paced beat. Sharpness is the absolute second difference of the raw
    samples (a spike of < 2 ms survives any 500 Hz recording as a kink); per lead, the
    median over beats of its maximum from 60 ms before the QRS onset to 25 ms after is
    compared with the lead's own 99th percentile over the window, so the test does not
    depend on gain or on the sampling rate. Spikes: >= 8x in two leads. Bipolar spikes are
    tiny, so a wide QRS (>= 140 ms) with >= 2x in two leads counts too: a wide QRS that
    starts at a sharp kink in every beat is paced, a bundle branch block starts smoothly."""
    columns = np.flatnonzero(use)
    if columns.size < 2 or median.beats.size < 3:
        return None
    ms = fs_hz / 1000.0
    start = int(round((median.bounds.onset_ms - 60.0) * ms))
    stop = int(round((median.bounds.onset_ms + 25.0) * ms))
    sharp = np.abs(np.diff(window[:, columns], n=2, axis=0))
    usual = np.maximum(np.percentile(sharp, 99, axis=0), 1e-3)
    peaks = [
        sharp[int(r) + start : int(r) + stop].max(axis=0)
        for r in median.beats
        if int(r) + start >= 0 and int(r) + stop <= sharp.shape[0]
    ]
    if len(peaks) < 3:
        return None
    ratio = np.sort(np.median(np.asarray(peaks), axis=0) / usual)[::-1]
    if ratio[1] >= SPIKE_RATIO:
        return f"pacing spikes before the QRS ({ratio[1]:.0f}x the usual sharpness in 2 leads)"
    wide = median.bounds.duration_ms >= WIDE_PACED_QRS_MS
    if wide and ratio[1] >= WIDE_SPIKE_RATIO:
        return (
            f"wide QRS ({median.bounds.duration_ms:.0f} ms) starting at a sharp deflection in "
            f"every beat ({ratio[1]:.1f}x the usual sharpness in 2 leads): paced rhythm"
        )
    return None


def analyze(
    signals: np.ndarray,
    fs: float,
    leads: list[str],
    sex: str | None = None,
    age: float | None = None,
) -> STResult:
    """ST analysis of a 12-lead (or 15/18-lead) window: ``signals`` (n_samples, n_leads) in mV
    at ``fs`` Hz, columns named by ``leads``; ``sex`` "M"/"F" and ``age`` (years) optional.
    Inputs longer than 10 s are analysed over their last 10 s."""
    fs_hz = check_fs(fs)
    names = _check_leads(leads)
    data = to_millivolts(signals, n_leads=len(names))
    if data.shape[0] == 0:
        raise SignalError("signals is empty; expected (n_samples, n_leads) samples in mV")
    sex_ = normalise_sex(sex)
    age_ = check_age(age)
    start = max(data.shape[0] - int(round(WINDOW_S * fs_hz)), 0)
    window = data[start:]
    evidence = EvidenceWindow(start, data.shape[0])

    notes: list[str] = []
    columns: dict[str, int] = {}
    for column, name in enumerate(names):
        lead = canonical_lead(name)
        if lead is None:
            notes.append(f"lead {name!r} is not a known ECG lead: ignored")
        elif lead in columns:
            notes.append(f"lead {name!r} repeats {lead}: the second copy is ignored")
        else:
            columns[lead] = column
    missing = [lead for lead in STANDARD if lead not in columns]
    if missing:
        notes.append(f"leads not recorded: {', '.join(missing)}")

    per_lead: dict[str, LeadST] = {}
    use = np.zeros(len(names), dtype=bool)
    for lead, column in columns.items():
        fault = _raw_fault(window[:, column])
        if fault is None:
            use[column] = True
        else:
            per_lead[lead] = _unusable(lead, fault)
    if not use.any():
        faults = [st.reason or "" for st in per_lead.values()]
        if faults and all(NOT_MV in fault for fault in faults):
            why = f"no usable lead: {NOT_MV}"
        else:
            why = "no usable lead (all flat, railed or unknown)" if columns else "no known lead"
        return _not_evaluable(why, per_lead, notes, evidence)

    order = [columns[lead] for lead in R_PEAK_LEADS if lead in columns and use[columns[lead]]]
    order += [c for c in columns.values() if use[c] and c not in order]
    # At 100-250 Hz a sample is 4-10 ms: the J point lands a sample off on the steep end of the
    # QRS and its level with it. Measure on a band-limited interpolation (docs/signal.md).
    half_sample_ms = 500.0 / fs_hz  # of the recording: the J point's timing uncertainty
    factor = max(1, math.ceil(MEASURE_FS_HZ / fs_hz - 1e-9))
    if factor > 1:
        window = resample_poly(window, factor, 1, axis=0)
        fs_hz *= factor
    # Waves are measured without powerline interference; pacing spikes are looked for in the
    # full band (a notch rings after every sharp edge).
    spiky, window = window, remove_mains(window, fs_hz)
    found = _find_median(window, fs_hz, order, use)
    if found is None:
        why = "fewer than 3 clean, alike beats found (noise, artefact or too short a window)"
        for lead, column in columns.items():
            if use[column]:
                per_lead[lead] = _unusable(lead, why)
        return _not_evaluable(why, per_lead, notes, evidence)
    median, r_column = found
    # A lead too noisy for ST (motion artefact) must not pick the R peaks nor move the QRS
    # bounds of the others: without it, once more.
    spreads = {c: _st_spread(median, c) for c in range(len(names)) if use[c]}
    noisy = [c for c, spread in spreads.items() if spread > NOISY_ST_MV]
    quiet = use.copy()
    quiet[noisy] = False
    if noisy and quiet.any():
        again = _find_median(window, fs_hz, [c for c in order if quiet[c]], quiet)
        if again is not None:
            median, r_column = again
            spreads = {c: _st_spread(median, c) for c in spreads}
    j_ms, onset_ms = median.bounds.offset_ms, median.bounds.onset_ms

    shapes: dict[str, QrsShape] = {}
    t_ends: list[float] = []
    for lead, column in columns.items():
        if not use[column]:
            continue
        beat = median.samples_mv[:, column]
        baseline = float(beat[median.pr_segment].mean())
        column_mv = median.samples_mv[:, column : column + 1]
        st_j, st_j60, st_j80, after_j, before_j = (
            float(_level(column_mv, median, j_ms + ms)[0]) - baseline
            for ms in (0.0, 60.0, 80.0, J_SLOPE_MS, -J_SLOPE_MS)
        )
        # How far the J level moves when the J point moves by half a sample of the recording.
        j_uncertainty = abs(after_j - before_j) / (2.0 * J_SLOPE_MS) * half_sample_ms
        spread = spreads[column]
        qrs = beat[median.index(onset_ms) : median.index(j_ms) + 1] - baseline
        shapes[lead] = QrsShape(
            max(float(qrs.max()), 0.0), max(-float(qrs.min()), 0.0), *_q_wave(qrs, fs_hz)
        )
        t_wave = beat[median.index(j_ms + T_FROM_MS) : median.index(j_ms + T_TO_MS) + 1] - baseline
        t_mv = float(t_wave[np.argmax(np.abs(t_wave))]) if t_wave.size else math.nan
        too_noisy = spread > NOISY_ST_MV
        per_lead[lead] = LeadST(
            lead,
            st_j,
            st_j60,
            st_j80,
            baseline,
            classify_slope(st_j, st_j80),
            not too_noisy,
            f"noisy: ST level varies {spread:.2f} mV from beat to beat" if too_noisy else None,
            t_mv,
            j_uncertainty,
        )
        if not too_noisy and lead in QT_LEADS:
            t_ends.append(t_wave_end_ms(beat, median, baseline, median.rr_ms))
    per_lead = {lead: per_lead[lead] for lead in columns if lead in per_lead}
    if not any(st.evaluable for st in per_lead.values()):
        why = "every lead is flat or too noisy for ST measurement"
        return _not_evaluable(why, per_lead, notes, evidence)

    paced = _paced(spiky, fs_hz, median, use)
    if paced is not None:
        notes.append(paced)
    if "I" in shapes:
        reversal = _limb_reversal(median, columns["I"], per_lead["I"], shapes["I"])
        if reversal is not None:
            notes.append(reversal)
    confounders = find_confounders(median.bounds.duration_ms, shapes, per_lead, bool(paced), sex_)
    qt = qt_ms(t_ends, onset_ms)
    qtc = qtc_bazett(qt, median.rr_ms / 1000.0)
    findings = evaluate(per_lead, sex_, age_, confounders, shapes, qtc)
    not_evaluable = [st.lead for st in per_lead.values() if not st.evaluable]
    if not_evaluable:
        notes.append(f"leads not evaluable: {', '.join(not_evaluable)}")
    return STResult(
        stemi=findings.stemi,
        territories=findings.territories,
        per_lead=per_lead,
        reciprocal=findings.reciprocal,
        ischemic_depression=findings.ischemic_depression,
        depression_territories=findings.depression_territories,
        confounders=confounders,
        reasons=findings.reasons,
        notes=tuple(notes) + findings.notes,
        evidence=evidence,
        r_peaks=np.round(median.beats / factor).astype(np.int64) + start,
        j_offset_ms=j_ms,
        qrs_onset_offset_ms=onset_ms,
        evaluable=True,
        why_not=None,
        analysis_lead=names[r_column],
        median_beats={lead: median.samples_mv[:, c] for lead, c in columns.items()},
        r_index=median.r_index,
        median_fs_hz=fs_hz,
        qt_ms=qt,
        qtc_ms=qtc,
        q_wave_territories=findings.q_wave_territories,
    )


# -- streaming -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class StemiSuspected:
    """STEMI criteria met in two evaluations in a row; ``sample`` is when that was decided
    (end of the analysed window), ``evidence`` the 10 s strip analysed."""

    sample: int
    territories: tuple[str, ...]
    result: STResult
    evidence: EvidenceWindow
    kind: Literal["stemi_suspected"] = "stemi_suspected"


@dataclass(frozen=True, slots=True)
class StemiCleared:
    """STEMI criteria no longer met in two evaluable windows in a row, decided at ``sample``."""

    sample: int
    kind: Literal["stemi_cleared"] = "stemi_cleared"


StemiEvent = StemiSuspected | StemiCleared


class StMonitor:
    """Live ST watch: fed (n, n_leads) mV chunks, analyses the last ``window_s`` every
    ``every_s`` seconds on a fixed sample grid (so any chunking gives the same events).

    A suspicion is raised after ``persistence`` consecutive STEMI evaluations and cleared after
    as many evaluable non-STEMI ones; not-evaluable windows (noise, lead off) change nothing.
    """

    def __init__(
        self,
        fs_hz: float,
        leads: list[str],
        *,
        sex: str | None = None,
        age: float | None = None,
        window_s: float = WINDOW_S,
        every_s: float = 5.0,
        persistence: int = 2,
    ) -> None:
        self.fs_hz = check_fs(fs_hz)
        self.leads = _check_leads(leads)
        self._sex = normalise_sex(sex)
        self._age = check_age(age)
        self._window = int(round(window_s * self.fs_hz))
        self._every = int(round(every_s * self.fs_hz))
        if self._window < 1 or self._every < 1 or persistence < 1:
            raise SignalError("window_s and every_s must be positive, persistence >= 1")
        self._persistence = persistence
        self._buffer = np.zeros((0, len(self.leads)))
        self._end = 0  # samples received
        self._next = self._window  # next evaluation when the stream reaches this sample
        self._streak = 0  # consecutive evaluations disagreeing with the current state
        self.active = False
        self.last_result: STResult | None = None

    def feed(self, samples: Any) -> list[StemiEvent]:
        """Add a chunk; return the events of every evaluation it completed, in order."""
        chunk = to_millivolts(samples, n_leads=len(self.leads))
        self._buffer = np.concatenate((self._buffer, chunk))
        self._end += chunk.shape[0]
        events: list[StemiEvent] = []
        while self._end >= self._next:
            first = self._end - self._buffer.shape[0]
            stop = self._next - first
            strip = self._buffer[stop - self._window : stop]
            event = self._evaluate(strip, self._next)
            if event is not None:
                events.append(event)
            self._next += self._every
        keep_from = self._next - self._window - (self._end - self._buffer.shape[0])
        self._buffer = self._buffer[max(keep_from, 0) :]
        return events

    def _evaluate(self, strip: FloatArray, end: int) -> StemiEvent | None:
        start = end - strip.shape[0]
        result = analyze(strip, self.fs_hz, self.leads, self._sex, self._age)
        evidence = EvidenceWindow(start, end)
        result = replace(result, evidence=evidence, r_peaks=result.r_peaks + start)
        self.last_result = result
        if not result.evaluable:
            return None
        if result.stemi == self.active:
            self._streak = 0
            return None
        self._streak += 1
        if self._streak < self._persistence:
            return None
        self._streak = 0
        self.active = result.stemi
        if result.stemi:
            return StemiSuspected(end, result.territories, result, evidence)
        return StemiCleared(end)
