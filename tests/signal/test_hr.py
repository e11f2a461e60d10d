import numpy as np

from ambulink.signal.hr import HeartRateMeter, rr_statistics
from ambulink.signal.qrs import detect
from tests.conftest import bundled


def test_heart_rate_of_a_real_record_matches_its_annotations() -> None:
    record = bundled("mitdb/100")
    ref = record.reference().beat_sample
    expected_bpm = 60.0 * (len(ref) - 1) / ((ref[-1] - ref[0]) / record.fs)
    meter = HeartRateMeter(record.fs)
    rates = [r for s in detect(record.lead(0), record.fs) if (r := meter.on_beat(int(s)))]
    assert abs(np.mean([r.average_bpm for r in rates]) - expected_bpm) < 2.0
    stats = meter.stats()
    assert stats is not None and stats.n == 64 and 600 < stats.mean_ms < 1000


def test_rr_statistics_by_definition() -> None:
    stats = rr_statistics(np.array([800.0, 900.0, 800.0, 900.0]))
    assert stats is not None
    assert stats.mean_ms == 850.0
    assert stats.rmssd_ms == 100.0
    assert stats.pnn50 == 1.0
    assert rr_statistics(np.array([800.0])) is None


def test_first_beat_has_no_rate_and_averaging_uses_the_last_eight() -> None:
    meter = HeartRateMeter(250.0)
    assert meter.on_beat(0) is None
    samples = [250 * k for k in range(1, 9)] + [2000 + 125 * k for k in range(1, 9)]
    rates = [meter.on_beat(s) for s in samples]
    assert rates[0] is not None and rates[0].bpm == 60.0
    last = rates[-1]
    assert last is not None and last.bpm == 120.0 and last.average_bpm == 120.0
