"""QT interval: the tangent-method T-wave end on a known wave and against LUDB's hand marks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ambulink.signal.median_beat import MedianBeat, QrsBounds
from ambulink.signal.qt import qt_ms, qtc_bazett, t_wave_end_ms
from ambulink.signal.st import analyze
from tests.signal.ludb import ludb, wave_marks

FS = 500.0
R_INDEX = 150  # 300 ms of window before R, as in median_beat


def beat_with_t(peak_ms: float, sigma_ms: float, height_mv: float) -> MedianBeat:
    """A median beat (one lead) whose only wave after the QRS is a Gaussian T wave."""
    t_ms = (np.arange(400) - R_INDEX) * 1000.0 / FS
    samples = height_mv * np.exp(-0.5 * ((t_ms - peak_ms) / sigma_ms) ** 2)
    column = samples[:, None]
    return MedianBeat(column, R_INDEX, FS, np.array([0]), column[None], QrsBounds(-50.0, 50.0), 0)


@pytest.mark.parametrize("height", [0.3, -0.3])
def test_tangent_of_a_gaussian_t_wave_ends_it_two_sigmas_after_its_peak(height: float) -> None:
    """The steepest point of a Gaussian is one sigma past the peak, at height e^-1/2 with
    slope -height/sigma e^-1/2: the tangent reaches zero one more sigma later."""
    beat = beat_with_t(peak_ms=250.0, sigma_ms=40.0, height_mv=height)
    assert t_wave_end_ms(beat.samples_mv[:, 0], beat, 0.0) == pytest.approx(330.0, abs=2.0)
    shifted = beat_with_t(peak_ms=280.0, sigma_ms=40.0, height_mv=height)
    assert t_wave_end_ms(shifted.samples_mv[:, 0], shifted, 0.0) == pytest.approx(360.0, abs=2.0)


def test_the_next_p_wave_is_not_taken_for_the_t_wave() -> None:
    """At a fast rate the next beat's P wave can stand taller than the T wave; the search
    stops 150 ms before the next R peak."""
    beat = beat_with_t(peak_ms=200.0, sigma_ms=30.0, height_mv=0.2)
    t_ms = (np.arange(beat.samples_mv.shape[0]) - R_INDEX) * 1000.0 / FS
    beat.samples_mv[:, 0] += 0.3 * np.exp(-0.5 * ((t_ms - 430.0) / 20.0) ** 2)  # next P wave
    column = beat.samples_mv[:, 0]
    assert t_wave_end_ms(column, beat, 0.0, rr_ms=560.0) == pytest.approx(260.0, abs=2.0)
    assert t_wave_end_ms(column, beat, 0.0) > 430.0  # without the rate: the P wave is taken


def test_flat_t_wave_has_no_end_and_qtc_rejects_nonsense() -> None:
    beat = beat_with_t(peak_ms=250.0, sigma_ms=40.0, height_mv=0.05)
    assert math.isnan(t_wave_end_ms(beat.samples_mv[:, 0], beat, 0.0))
    assert qt_ms([330.0, math.nan, 350.0, 340.0], onset_ms=-50.0) == pytest.approx(390.0)
    assert math.isnan(qt_ms([math.nan], onset_ms=-50.0))
    assert qtc_bazett(400.0, 0.64) == pytest.approx(500.0)
    assert math.isnan(qtc_bazett(100.0, 1.0))  # implausible: a measuring failure
    assert math.isnan(qtc_bazett(400.0, math.nan))


LUDB_SAMPLE = [2, 4, 6, 10, 12, 14, 16, 18, 20, 22, 26, 28, 30, 32, 36, 38, 40, 42, 44, 46]


def test_qt_agrees_with_ludb_hand_marks() -> None:
    """QT from our QRS onset and tangent T end against the cardiologists' marks (median of
    the leads' QRS onsets to the median of their T ends, per beat): the tangent method ends
    T slightly early, so the error is mostly negative and small."""
    errors = []
    for n in LUDB_SAMPLE:
        signals, fs, leads = ludb(n)
        result = analyze(signals, fs, leads)
        if not math.isfinite(result.qt_ms):
            continue
        ours = result.qt_ms
        marked = []
        qrs = [wave_marks(n, lead, "N") for lead in ("ii", "v2", "v3", "v4", "v5")]
        tees = [wave_marks(n, lead, "t") for lead in ("ii", "v2", "v3", "v4", "v5")]
        for r in result.r_peaks:
            onsets = [a for marks in qrs for a, b in marks if a <= r <= b]
            ends = [b for marks in tees for a, b in marks if 0 < a - r < 0.5 * fs]
            if onsets and ends:
                marked.append((np.median(ends) - np.median(onsets)) * 1000.0 / fs)
        if marked:
            errors.append(ours - float(np.median(marked)))
    assert len(errors) >= 15
    assert -30.0 <= float(np.median(errors)) <= 5.0
    assert float(np.median(np.abs(errors))) <= 25.0
