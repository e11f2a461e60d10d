import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambulink.errors import SignalError
from ambulink.evaluation.matching import match_beats, tolerance_samples
from ambulink.signal.qrs import QrsDetector, detect
from tests.conftest import Record, bundled, shared
from tests.signal.chunking import chunks


def score(
    record: Record, peaks: np.ndarray, lead_seconds: float | None = None
) -> tuple[float, float]:
    """Se and +P of ``peaks`` against the record's reference beats (EC57 ±150 ms)."""
    ref = record.reference().beat_sample
    if lead_seconds is not None:
        ref = ref[ref < lead_seconds * record.fs]
    match = match_beats(ref, peaks, tolerance_samples(record.fs))
    tp = len(match.ref_index)
    return tp / len(ref), tp / len(peaks)


@pytest.mark.parametrize(
    ("name", "min_se", "min_ppv"),
    [("mitdb/100", 0.998, 0.998), ("mitdb/119", 0.995, 0.995), ("mitdb/201", 0.98, 0.995)],
)
def test_detects_the_annotated_beats_of_bundled_records(
    name: str, min_se: float, min_ppv: float
) -> None:
    record = bundled(name)
    peaks = detect(record.lead(0), record.fs)
    se, ppv = score(record, peaks)
    assert se >= min_se and ppv >= min_ppv, f"{name}: Se {se:.4f}, +P {ppv:.4f}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mitdb/105", "mitdb/208", "mitdb/102", "mitdb/200", "mitdb/107"])
def test_noisy_paced_and_ectopic_records_from_the_shared_set(name: str) -> None:
    record = shared(name)
    peaks = detect(record.lead(0), record.fs)
    se, ppv = score(record, peaks)
    assert se >= 0.97 and ppv >= 0.97, f"{name}: Se {se:.4f}, +P {ppv:.4f}"


def test_r_peaks_sit_on_the_annotated_fiducial() -> None:
    record = bundled("mitdb/100")
    peaks = detect(record.lead(0), record.fs)
    ref = record.reference().beat_sample
    nearest = peaks[np.clip(np.searchsorted(peaks, ref), 0, len(peaks) - 1)]
    error_ms = np.abs(nearest - ref) * 1000 / record.fs
    assert np.median(error_ms) <= 20.0


@settings(max_examples=12)
@given(sizes=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=40))
def test_peaks_do_not_depend_on_chunk_sizes(sizes: list[int]) -> None:
    record = bundled("mitdb/119")
    lead = record.lead(0, seconds=120)
    whole = detect(lead, record.fs)
    detector = QrsDetector(record.fs)
    chunked = [p.sample for part in chunks(lead, sizes) for p in detector.feed(part)]
    chunked += [p.sample for p in detector.flush()]
    assert np.array_equal(np.array(chunked), whole)
    assert len(whole) > 100  # 2 min of 119 hold ~140 beats: a mute detector fails


def test_the_horizon_is_a_promise_no_later_peak_breaks() -> None:
    record = bundled("mitdb/201")  # AF and pauses: searchback finds beats late
    lead = record.lead(0, seconds=600)
    detector = QrsDetector(record.fs)
    horizon = 0
    for part in chunks(lead, [7, 180, 33, 901]):
        for peak in detector.feed(part):
            assert peak.sample >= horizon
        assert detector.horizon >= horizon
        horizon = detector.horizon
    assert horizon > len(lead) - 4 * record.fs


def test_int16_samples_with_gain_match_float_millivolts() -> None:
    record = bundled("mitdb/100")
    lead = record.lead(0, seconds=60)
    adc = np.round(lead * 200).astype(np.int16)
    as_int = QrsDetector(record.fs, gain=200)
    as_float = QrsDetector(record.fs)
    from_int = [p.sample for p in as_int.feed(adc) + as_int.flush()]
    from_float = [p.sample for p in as_float.feed(adc / 200.0) + as_float.flush()]
    assert from_int == from_float and len(from_int) > 60


def test_a_flat_line_has_no_beats() -> None:
    assert detect(np.zeros(360 * 20), 360).size == 0
    assert detect(np.full(360 * 20, 1.25), 360).size == 0


@pytest.mark.parametrize(
    ("signal", "fs", "message"),
    [
        (np.zeros(100), 50, "fs must be"),
        (np.array([0.0, np.nan]), 360, "finite"),
        (np.zeros((2, 100)), 360, "samples down the rows"),
        (np.array([]), 360, "empty"),
    ],
)
def test_bad_input_raises_signal_error(signal: np.ndarray, fs: float, message: str) -> None:
    with pytest.raises(SignalError, match=message):
        detect(signal, fs)


def test_several_leads_in_columns_use_the_second_while_the_first_is_off() -> None:
    """(n_samples, n_leads), as WFDB's p_signal: the first lead's beats, and the second's
    while the first is detached. On mitdb 119 with MLII flat for 60 s, the one-lead form
    finds nothing there and the two-lead form finds the annotated beats."""
    record = bundled("mitdb/119")
    first_minutes = record.signals_mv[: int(300 * record.fs)].copy()
    assert np.array_equal(detect(first_minutes, record.fs), detect(first_minutes[:, 0], record.fs))
    off = slice(int(120 * record.fs), int(180 * record.fs))
    first_minutes[off, 0] = 0.0
    ref = record.reference().beat_sample
    ref = ref[(ref >= off.start + record.fs) & (ref < off.stop - record.fs)]
    one = detect(first_minutes[:, 0], record.fs)
    two = detect(first_minutes, record.fs)
    tolerance = tolerance_samples(record.fs)
    assert len(match_beats(ref, one, tolerance).ref_index) == 0
    assert len(match_beats(ref, two, tolerance).ref_index) >= 0.95 * len(ref) > 0
