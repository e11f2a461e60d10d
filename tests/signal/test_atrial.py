"""P-wave coherence on real records: high where the rhythm has P waves, low in AF."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from ambulink.signal.atrial import MIN_SEGMENTS, POLY, SEGMENT_MS, SEGMENTS, AtrialCoherence
from ambulink.signal.beats import PRECEDING_S
from ambulink.signal.filters import SosFilter, bandpass_sos
from tests.conftest import Record, bundled


def coherence_by_rhythm(record: Record) -> dict[str, list[float]]:
    """Coherence after each reference N beat, grouped by AF / not AF at that beat (the
    classifier's 0.5-40 Hz band-pass and segments, reference R peaks)."""
    fs = record.fs
    filtered = SosFilter(bandpass_sos(0.5, 40.0, fs))(record.lead(0))
    ref = record.reference()
    af = [(e.start, e.end) for e in ref.episodes if e.label == "AF"]
    n = int(round(PRECEDING_S * fs))
    atrial = AtrialCoherence(fs)
    out: dict[str, list[float]] = {"AF": [], "other": []}
    previous = None
    for sample, label in zip(ref.beat_sample, ref.beat_class, strict=True):
        r = int(sample)
        if label == "N":
            preceding = filtered[r - n : r] if r >= n else None
            value = atrial.push(r, previous, preceding)
            if value is not None:
                out["AF" if any(a <= r < b for a, b in af) else "other"].append(value)
        previous = r
    return out


def test_sinus_rhythm_shows_p_waves() -> None:
    values = coherence_by_rhythm(bundled("mitdb/100"))["other"]
    assert len(values) > 2000
    assert statistics.median(values) > 0.7


def test_af_shows_none_and_sinus_in_the_same_record_does() -> None:
    values = coherence_by_rhythm(bundled("mitdb/201"))
    assert len(values["AF"]) > 800 and len(values["other"]) > 600
    assert statistics.median(values["AF"]) < 0.2
    assert statistics.median(values["other"]) > 0.5


def test_needs_enough_segments_and_skips_beats_without_one() -> None:
    record = bundled("mitdb/100")
    fs = record.fs
    filtered = SosFilter(bandpass_sos(0.5, 40.0, fs))(record.lead(0))
    n = int(round(PRECEDING_S * fs))
    peaks = [int(s) for s in record.reference().beat_sample[5:40]]
    atrial = AtrialCoherence(fs)
    values = [atrial.push(r, None, filtered[r - n : r]) for r in peaks[:MIN_SEGMENTS]]
    assert values[:-1] == [None] * (MIN_SEGMENTS - 1) and values[-1] is not None
    # a beat whose previous R peak sits in its segment has none; unknown samples neither
    fresh = AtrialCoherence(fs)
    assert all(fresh.push(r, r - int(0.3 * fs), filtered[r - n : r]) is None for r in peaks)
    assert all(fresh.push(r, None, None) is None for r in peaks)


@pytest.mark.parametrize("bad", [np.full(200, np.nan), np.zeros(3)])
def test_unusable_samples_count_as_no_segment(bad: np.ndarray) -> None:
    atrial = AtrialCoherence(360.0)
    assert all(atrial.push(1000 * i + 1000, None, bad) is None for i in range(20))


def test_reading_is_the_energy_of_the_mean_of_the_last_unit_segments() -> None:
    # the running sum must agree with the definition, through gaps and a full turnover
    record = bundled("mitdb/201")
    fs = record.fs
    filtered = SosFilter(bandpass_sos(0.5, 40.0, fs))(record.lead(0))
    n = int(round(PRECEDING_S * fs))
    lead_in, lead_out = (int(round(ms * fs / 1000.0)) for ms in SEGMENT_MS)
    t = np.linspace(-1.0, 1.0, lead_in - lead_out)
    basis = np.vstack([t**k for k in range(POLY + 1)]).T
    atrial = AtrialCoherence(fs)
    recent: list[np.ndarray | None] = []
    peaks = [int(s) for s in record.reference().beat_sample[3:80]]
    for i, r in enumerate(peaks):
        preceding = None if i % 7 == 3 else filtered[r - n : r]  # some beats without samples
        value = atrial.push(r, None, preceding)
        if preceding is None:
            recent.append(None)
        else:
            seg = preceding[n - lead_in : n - lead_out]
            seg = seg - basis @ np.linalg.lstsq(basis, seg, rcond=None)[0]
            recent.append(seg / np.linalg.norm(seg))
        known = [s for s in recent[-SEGMENTS:] if s is not None]
        if len(known) < MIN_SEGMENTS:
            assert value is None
        else:
            mean = np.mean(known, axis=0)
            assert value == pytest.approx(float(mean @ mean), rel=1e-9)
