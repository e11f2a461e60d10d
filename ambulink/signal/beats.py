"""Streaming beat classification into AAMI classes N, V, S, Q, one lead.

Each beat's QRS is compared with morphology clusters learnt online (running-average templates).
The dominant cluster (most beats recently, preferring narrow complexes) is the patient's normal
conduction. A beat is V when its QRS is clearly different from the normal template and wide or
premature with a compensatory pause; S when it has the normal morphology but comes early in a
regular rhythm; Q while there is no template yet or the beat is buried in noise. A beat is
labelled once the next beat is known (the pause after it is a feature), so labels lag one beat.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ambulink.signal.buffer import SampleWindow
from ambulink.signal.events import Beat, BeatLabel
from ambulink.signal.filters import MainsGate, SosFilter, bandpass_sos
from ambulink.signal.qrs import QrsConfig, QrsDetector
from ambulink.signal.validation import as_record, check_fs, to_millivolts

FloatArray = NDArray[np.float64]
HISTORY_S = 10.0  # longer than any delay between a sample and the report of its R peak
PRECEDING_S = 0.5  # band-passed samples before each R peak kept for the atrial measure
POST_RR_CAP = 2.0  # the following RR counts up to this multiple of the normal RR


@dataclass(frozen=True, slots=True)
class BeatConfig:
    before_ms: float = 90.0  # QRS window starts this long before the R peak
    after_ms: float = 130.0  # ... and ends this long after it
    max_shift_ms: float = 12.0  # alignment search when correlating with a template
    join_corr: float = 0.90  # a beat joins a cluster at or above this correlation
    normal_corr: float = 0.86  # ... and counts as normal morphology at or above this
    ectopic_corr: float = 0.70  # below this a beat is clearly a different QRS
    wide_ms: float = 20.0  # wider than the normal QRS by this much: ventricular
    narrower_ms: float = 10.0  # a QRS this much narrower than normal is not ventricular
    opposite_corr: float = 0.3  # below this correlation a QRS is ventricular whatever its width
    ectopic_residual: float = 0.6  # shape difference from the normal template (RMS ratio)
    pause_after: float = 1.1  # following RR above this fraction of the normal RR: a pause
    smoother_log: float = -0.3  # log roughness ratio below this: smoother than the normal QRS
    premature: float = 0.88  # RR below this fraction of the normal RR: premature
    max_clusters: int = 12
    learning_beats: int = 8
    chaos_beats: int = 12  # look at this many recent beats ...
    chaos_share: float = 0.5  # ... and call them Q when more than this share had a new shape


@dataclass(slots=True, eq=False)
class _Cluster:
    ident: int
    template: FloatArray
    width_ms: float
    count: float = 1.0
    pre_rr: float = 0.0  # running mean of the RR before this cluster's beats (samples)
    last_used: int = 0


@dataclass(slots=True)
class _Pending:
    sample: int
    rr: int | None
    features: FloatArray | None = None


@dataclass(slots=True)
class _RhythmState:
    normal_rr: deque[int] = field(default_factory=lambda: deque(maxlen=8))
    all_rr: deque[int] = field(default_factory=lambda: deque(maxlen=16))


class BeatClassifier:
    """Labels R peaks of one lead. Feed the raw samples and the R peaks found in them."""

    def __init__(
        self, fs_hz: float, config: BeatConfig | None = None, *, ident_base: int = 0
    ) -> None:
        """``ident_base``: QRS shape ids start above it (keeps two classifiers' ids apart)."""
        self.fs_hz = check_fs(fs_hz)
        self.config = cfg = config or BeatConfig()
        self._filter = SosFilter(bandpass_sos(0.5, min(40.0, 0.45 * self.fs_hz), self.fs_hz))
        # The 40 Hz low-pass (second order) leaves half of a 50 Hz hum, which reads as QRS
        # roughness and shape change: notched while the lead has hum.
        self._mains = MainsGate(self.fs_hz)
        self._signal = SampleWindow()
        self._before = int(round(cfg.before_ms * self.fs_hz / 1000.0))
        self._after = int(round(cfg.after_ms * self.fs_hz / 1000.0))
        self._shift = max(int(round(cfg.max_shift_ms * self.fs_hz / 1000.0)), 1)
        self._clusters: list[_Cluster] = []
        self._pending: deque[_Pending] = deque()
        self._last_peak: int | None = None
        self._rhythm = _RhythmState()
        self._n_beats = 0
        self._next_ident = ident_base
        self._recent_new: deque[bool] = deque(maxlen=cfg.chaos_beats)
        self._preceding_n = int(round(PRECEDING_S * self.fs_hz))
        self._preceding: deque[tuple[int, FloatArray]] = deque(maxlen=8)

    def feed(self, samples_mv: FloatArray) -> None:
        """Append raw samples (mV) in stream order."""
        self._signal.append(self._mains(self._filter(samples_mv), samples_mv))

    def add_peak(self, sample: int) -> list[Beat]:
        """Register the next R peak; returns beats whose label is now decided (the previous)."""
        rr = None if self._last_peak is None else sample - self._last_peak
        self._last_peak = sample
        self._pending.append(_Pending(sample, rr))
        return self.ready_beats()

    def ready_beats(self) -> list[Beat]:
        """Beats whose window became available after a feed (the next peak already known)."""
        out: list[Beat] = []
        while len(self._pending) >= 2 and self._ready(self._pending[0]):
            beat = self._pending.popleft()
            out.append(self._label(beat, self._pending[0].rr))
        self._trim()
        return out

    def expire(self, horizon: int) -> list[Beat]:
        """Label the last beat without waiting for the next one, once no R peak can come before
        ``horizon`` (the QRS detector's) and the pause after the beat has grown long enough to
        count in full (``POST_RR_CAP`` normal RRs): its label is then the one the next beat would
        have given it. Beats are not held back through asystole or a detached electrode."""
        if len(self._pending) != 1 or not self._ready(self._pending[0]):
            return []
        normal = self._rhythm.normal_rr
        wait = int(POST_RR_CAP * float(np.median(normal))) + 1 if normal else int(self.fs_hz)
        beat = self._pending[0]
        if horizon - beat.sample < wait:
            return []
        self._pending.popleft()
        return [self._label(beat, wait)]

    @property
    def oldest_pending(self) -> int | None:
        """R peak of the oldest beat not labelled yet (None when all are)."""
        return self._pending[0].sample if self._pending else None

    def flush(self) -> list[Beat]:
        """End of stream: label what is left with the samples there are."""
        out: list[Beat] = []
        while self._pending:
            beat = self._pending.popleft()
            post = self._pending[0].rr if self._pending else None
            out.append(self._label(beat, post))
        return out

    def preceding(self, sample: int) -> FloatArray | None:
        """The band-passed (0.5-40 Hz) ``PRECEDING_S`` before the R peak of the labelled beat at
        ``sample`` (None when the stream had not been running that long); forgets older beats'."""
        while self._preceding and self._preceding[0][0] < sample:
            self._preceding.popleft()
        if self._preceding and self._preceding[0][0] == sample:
            return self._preceding.popleft()[1]
        return None

    # -- internals ------------------------------------------------------------------------

    def _ready(self, beat: _Pending) -> bool:
        return self._signal.end >= beat.sample + self._after + self._shift

    def _trim(self) -> None:
        # R peaks arrive late (QRS learning, searchback): keep enough history for them.
        oldest = self._signal.end - int(HISTORY_S * self.fs_hz)
        if self._pending:
            oldest = min(oldest, self._pending[0].sample)
        self._signal.trim_before(oldest - max(self._before + self._shift, self._preceding_n))

    def _window(self, sample: int) -> FloatArray | None:
        lo, hi = sample - self._before - self._shift, sample + self._after + self._shift + 1
        if lo < self._signal.start or hi > self._signal.end:
            return None
        return self._signal.view(lo, hi).copy()

    def _width_ms(self, qrs: FloatArray) -> float:
        """QRS duration: span where the slope exceeds a fifth of its maximum."""
        slope = np.abs(np.diff(qrs))
        top = float(slope.max()) if slope.size else 0.0
        if top <= 0.0:
            return 0.0
        above = np.flatnonzero(slope > 0.2 * top)
        return float(above[-1] - above[0] + 1) * 1000.0 / self.fs_hz

    def _correlate(self, wide: FloatArray, template: FloatArray) -> tuple[float, int]:
        """Best Pearson correlation of the template against ``wide`` over the allowed shifts."""
        n = template.size
        t = template - template.mean()
        t_norm = float(np.sqrt(np.dot(t, t))) or 1.0
        step = max(1, self._shift // 4)
        # every allowed shift at once (one row per shift): Pearson r of each row with t
        rows = np.lib.stride_tricks.sliding_window_view(wide[: 2 * self._shift + n], n)[::step]
        centred = rows - rows.mean(axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
        norms[norms == 0.0] = 1.0
        corr = (centred @ t) / (norms * t_norm)
        i = int(np.argmax(corr))
        return float(corr[i]), i * step

    def _normal_cluster(self) -> _Cluster | None:
        if not self._clusters:
            return None
        top = max(self._clusters, key=lambda c: c.count)
        # Bigeminy gives two equally common clusters: the normal beats are the ones that are
        # not early (longer preceding RR) and not wider. Their shape may be split over several
        # clusters (templates drift; at 250 Hz a sample is 4 ms of alignment), so it is their
        # clusters together that must be half as common as the early one.
        later = [
            c
            for c in self._clusters
            if c is not top and c.pre_rr > 1.2 * top.pre_rr and c.width_ms <= top.width_ms + 10.0
        ]
        if later and sum(c.count for c in later) >= 0.5 * top.count:
            return max(later, key=lambda c: c.count)
        return top

    def _label(self, beat: _Pending, post_rr: int | None) -> Beat:
        cfg = self.config
        self._n_beats += 1
        rr_ms = None if beat.rr is None else beat.rr * 1000.0 / self.fs_hz
        if beat.sample - self._preceding_n >= self._signal.start:
            segment = self._signal.view(beat.sample - self._preceding_n, beat.sample).copy()
            self._preceding.append((beat.sample, segment))
        wide = self._window(beat.sample)
        if wide is None:
            return Beat(beat.sample, "Q", rr_ms, None)
        core = wide[self._shift : wide.size - self._shift]
        width = self._width_ms(core)
        # Assign to a morphology cluster.
        best: _Cluster | None = None
        best_corr, best_shift = -1.0, self._shift
        for c in self._clusters:
            corr, shift = self._correlate(wide, c.template)
            if corr > best_corr:
                best, best_corr, best_shift = c, corr, shift
        aligned = wide[best_shift : best_shift + core.size]
        amp = float(np.ptp(aligned))
        if best is not None and best_corr >= cfg.join_corr and self._similar_amplitude(amp, best):
            best.template = 0.9 * best.template + 0.1 * aligned
            best.width_ms = 0.9 * best.width_ms + 0.1 * width
            cluster = best
            self._recent_new.append(False)
        else:
            self._recent_new.append(True)
            self._next_ident += 1
            cluster = _Cluster(self._next_ident, aligned.copy(), width)
            if len(self._clusters) >= cfg.max_clusters:
                # Make room among the old clusters: the new one must survive its first beat, or
                # a new rhythm could never be learnt while the old shapes are still counted.
                self._clusters.remove(min(self._clusters, key=lambda c: (c.count, c.last_used)))
            self._clusters.append(cluster)
        for c in self._clusters:
            c.count *= 0.995
        cluster.count += 1.0
        cluster.last_used = self._n_beats
        if beat.rr is not None:
            cluster.pre_rr = (
                beat.rr if cluster.pre_rr == 0.0 else 0.9 * cluster.pre_rr + 0.1 * beat.rr
            )

        if sum(self._recent_new) > cfg.chaos_share * len(self._recent_new):
            label: BeatLabel = "Q"  # most recent QRS shapes are new: noise or chaos, not beats
        else:
            label = self._decide(cluster, wide, width, beat.rr, post_rr)
        if beat.rr is not None:
            self._rhythm.all_rr.append(beat.rr)
            if label == "N":
                self._rhythm.normal_rr.append(beat.rr)
        return Beat(beat.sample, label, rr_ms, width, cluster.ident)

    def _similar_amplitude(self, amp: float, cluster: _Cluster) -> bool:
        ref = float(np.ptp(cluster.template))
        return ref > 0 and 0.6 <= amp / ref <= 1.6

    def _features(
        self, cluster: _Cluster, wide: FloatArray, width: float, rr: int | None, post: int | None
    ) -> FloatArray | None:
        """Beat features relative to the normal cluster (see ``FEATURES``)."""
        normal = self._normal_cluster()
        if normal is None:
            return None
        corr, shift = (
            (1.0, self._shift) if cluster is normal else self._correlate(wide, normal.template)
        )
        beat = wide[shift : shift + normal.template.size]
        t = normal.template
        t_amp = float(np.ptp(t)) or 1e-6
        residual = float(np.linalg.norm((beat - beat.mean()) - (t - t.mean()))) / (
            float(np.linalg.norm(t - t.mean())) or 1e-6
        )
        normal_rr = float(np.median(self._rhythm.normal_rr)) if self._rhythm.normal_rr else None
        pre = 1.0 if rr is None or not normal_rr else rr / normal_rr
        after = 1.0 if post is None or not normal_rr else post / normal_rr
        return np.array(
            [
                1.0 - corr,
                (width - normal.width_ms) / 100.0,
                min(residual, 3.0),
                float(np.log(max(float(np.ptp(beat)), 1e-6) / t_amp)),
                min(pre, 2.0),
                min(after, POST_RR_CAP),
                min(cluster.count / max(normal.count, 1e-6), 2.0),
                float(cluster is normal),
                float(np.log(_roughness(beat) / max(_roughness(t), 1e-9))),
            ]
        )

    def _decide(
        self, cluster: _Cluster, wide: FloatArray, width: float, rr: int | None, post: int | None
    ) -> BeatLabel:
        cfg = self.config
        if self._n_beats <= cfg.learning_beats:
            return "N"
        f = self._features(cluster, wide, width, rr, post)
        self.last_features = f
        if f is None:
            return "Q"
        corr, width_gain, residual, pre, post, is_normal = (
            1.0 - f[0],
            100.0 * f[1],
            f[2],
            f[4],
            f[5],
            f[7] == 1.0,
        )
        premature = pre < cfg.premature
        # A ventricular beat comes early, is followed by a pause, or is smoother than the normal
        # QRS (slow conduction through muscle); a different shape with none of these is noise.
        ectopic_timing = premature or post > cfg.pause_after or f[8] < cfg.smoother_log
        if not is_normal and residual > cfg.ectopic_residual and ectopic_timing:
            if width_gain > cfg.wide_ms:
                return "V"
            # A different QRS that is not narrower than normal, and early or clearly different.
            if width_gain > -cfg.narrower_ms and (premature or corr < cfg.ectopic_corr):
                return "V"
            if corr < cfg.opposite_corr and residual > 1.0:
                return "V"  # a QRS unlike the normal one at all (width estimates fail there)
        compensated = post > 1.1 and pre + post > 1.7
        if premature and compensated and corr >= cfg.normal_corr and self._regular():
            return "S"
        return "N"

    def _regular(self) -> bool:
        rr = np.asarray(self._rhythm.all_rr, dtype=np.float64)
        if rr.size < 6:
            return False
        return bool(np.median(np.abs(np.diff(rr))) < 0.08 * np.median(rr))


def _roughness(x: FloatArray) -> float:
    """High-frequency content relative to size: RMS second difference over peak-to-peak."""
    if x.size < 3:
        return 0.0
    return float(np.sqrt(np.mean(np.diff(x, 2) ** 2))) / max(float(np.ptp(x)), 1e-6)


class BeatDetector:
    """QRS detection plus classification for one lead: feed samples, get labelled beats."""

    def __init__(
        self,
        fs_hz: float,
        *,
        gain: float | None = None,
        qrs: QrsConfig | None = None,
        beats: BeatConfig | None = None,
    ) -> None:
        self.fs_hz = check_fs(fs_hz)
        self._gain = gain
        self._qrs = QrsDetector(self.fs_hz, config=qrs)
        self._classifier = BeatClassifier(self.fs_hz, beats)

    def feed(self, samples: Any) -> list[Beat]:
        x = to_millivolts(samples, gain=self._gain)
        self._classifier.feed(x)
        out: list[Beat] = []
        for peak in self._qrs.feed(x):
            out.extend(self._classifier.add_peak(peak.sample))
        out.extend(self._classifier.ready_beats())
        return out

    def flush(self) -> list[Beat]:
        out: list[Beat] = []
        for peak in self._qrs.flush():
            out.extend(self._classifier.add_peak(peak.sample))
        return out + self._classifier.flush()


def classify(signal: np.ndarray, fs: float) -> list[Beat]:
    """Detect and classify the beats of ``signal`` (mV) at ``fs`` Hz (AAMI N/V/S/Q).

    ``signal`` is one lead (1-D), or leads in columns (n_samples, n_leads): then the beats are
    the first lead's, and the second's while the first is off, as in ``qrs.detect``.
    """
    record, fs_hz = as_record(signal, fs)
    if record.shape[1] > 1:
        from ambulink.signal.analyzer import record_beats  # it imports this module

        return record_beats(record, fs_hz)
    detector = BeatDetector(fs_hz)
    return detector.feed(record[:, 0]) + detector.flush()
