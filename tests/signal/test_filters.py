import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ambulink.signal.filters import (
    FirFilter,
    MainsGate,
    SosFilter,
    bandpass_sos,
    mains_interference,
    remove_mains,
)
from tests.conftest import bundled
from tests.signal.chunking import chunks


@settings(max_examples=15)
@given(sizes=st.lists(st.integers(min_value=1, max_value=2000), min_size=1, max_size=20))
def test_filters_are_bit_identical_whatever_the_chunking(sizes: list[int]) -> None:
    lead = bundled("mitdb/100").lead(0, seconds=30)
    sos = bandpass_sos(5.0, 15.0, 360.0)
    whole_iir = SosFilter(sos)(lead)
    whole_fir = FirFilter(np.ones(54) / 54)(lead)
    iir, fir = SosFilter(sos), FirFilter(np.ones(54) / 54)
    parts = list(chunks(lead, sizes))
    assert np.array_equal(np.concatenate([iir(p) for p in parts]), whole_iir)
    assert np.array_equal(np.concatenate([fir(p) for p in parts]), whole_fir)


def test_mains_is_removed_only_where_it_is() -> None:
    rec = bundled("ptbxl/00003_hr")
    x = rec.signals_mv
    assert np.array_equal(remove_mains(x, rec.fs), x)  # a clean record is left as it is
    t = np.arange(x.shape[0]) / rec.fs
    hum = np.zeros_like(x)
    hum[:, 1] = 0.2 * np.sin(2 * np.pi * 49.9 * t)  # lead II hums at 50 Hz ...
    hum[:, 7] = 0.05 * np.sin(2 * np.pi * 60.1 * t)  # ... V2 at 60 Hz
    assert mains_interference(x[:, 1] + hum[:, 1], rec.fs) == [50.0]
    assert mains_interference(x[:, 7] + hum[:, 7], rec.fs) == [60.0]
    cleaned = remove_mains(x + hum, rec.fs)
    inner = slice(int(rec.fs), -int(rec.fs))  # away from the window's ends
    for lead in (1, 7):
        assert np.sqrt(np.mean((cleaned[inner, lead] - x[inner, lead]) ** 2)) < 0.01
    untouched = [lead for lead in range(x.shape[1]) if lead not in (1, 7)]
    assert np.array_equal(cleaned[:, untouched], x[:, untouched])


@settings(max_examples=10)
@given(sizes=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=20))
def test_the_mains_gate_notches_only_while_there_is_hum(sizes: list[int]) -> None:
    """mitdb 100 (its own 60 Hz is ~10-20 µV): untouched. With 0.2 mV of 50 Hz from 10 s on:
    notched from the first whole 2 s block after it starts, whatever the chunking."""
    fs = 360.0
    lead = bundled("mitdb/100").lead(0, seconds=30)
    assert np.array_equal(MainsGate(fs)(lead, lead), lead)
    t = np.arange(lead.size) / fs
    humming = lead + np.where(t >= 10.0, 0.2 * np.sin(2 * np.pi * 50.0 * t), 0.0)
    whole = MainsGate(fs)(humming, humming)
    gate = MainsGate(fs)
    parts = list(chunks(humming, sizes))
    assert np.array_equal(np.concatenate([gate(p, p) for p in parts]), whole)
    assert np.array_equal(whole[: int(12 * fs)], humming[: int(12 * fs)])  # blocks 0-5 clean
    tail = whole[int(13 * fs) :]
    freqs = np.fft.rfftfreq(tail.size, 1.0 / fs)
    at_50 = 2.0 * np.abs(np.fft.rfft(tail - tail.mean()))[np.abs(freqs - 50.0) < 0.3] / tail.size
    assert float(at_50.max()) < 0.01 and gate.active  # 0.2 mV in
