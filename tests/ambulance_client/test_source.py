"""RecordReplay: real records replayed block by block, paced by a fake clock (no sleeping)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray

from ambulink.ambulance_client.source import RecordReplay, SampleBlock
from ambulink.data import record_path
from ambulink.errors import ConfigError, RecordNotFound


def adc(name: str) -> NDArray[np.int64]:
    rec = wfdb.rdrecord(record_path(name), physical=False)
    return np.asarray(rec.d_signal - np.asarray(rec.baseline), dtype=np.int64)


def write_adc(
    path: Path,
    d_signal: NDArray[np.int64],
    fs: int,
    leads: list[str],
    fmt: str,
    gains: list[float],
    baseline: int,
) -> str:
    """Write ADC samples as a WFDB record at ``path`` (no suffix); returns the record path."""
    wfdb.wrsamp(
        path.name,
        fs=fs,
        units=["mV"] * len(leads),
        sig_name=leads,
        d_signal=d_signal,
        fmt=[fmt] * len(leads),
        adc_gain=gains,
        baseline=[baseline] * len(leads),
        write_dir=str(path.parent),
    )
    return str(path)


class FakeTime:
    """A clock that moves only when slept on (plus ``work_s`` of processing per block)."""

    def __init__(self, start_s: float = 1000.0, work_s: float = 0.0) -> None:
        self.now_s = start_s
        self.work_s = work_s
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now_s

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)
        self.now_s += delay_s


async def take(replay: RecordReplay, n: int, fake: FakeTime) -> list[tuple[float, SampleBlock]]:
    out: list[tuple[float, SampleBlock]] = []
    async for block in replay.blocks():
        out.append((fake.now_s, block))
        fake.now_s += fake.work_s  # the consumer takes time before asking for the next block
        if len(out) == n:
            break
    return out


@pytest.mark.parametrize(
    ("name", "fs", "n_leads", "gain", "first_lead"),
    [
        ("mitdb/100", 360, 2, 200.0, "MLII"),
        ("ptbdb/s0010_re", 1000, 15, 2000.0, "i"),
        ("ptbxl/00003_hr", 500, 12, 1000.0, "I"),
    ],
)
def test_blocks_concatenate_to_the_record(
    name: str, fs: int, n_leads: int, gain: float, first_lead: str
) -> None:
    replay = RecordReplay(record_path(name), block_ms=40.0, loop=False)
    assert (replay.fs, replay.n_leads, replay.gain, replay.leads[0]) == (
        fs,
        n_leads,
        gain,
        first_lead,
    )
    assert replay.n_blocks is not None
    blocks = [replay.block_at(k) for k in range(replay.n_blocks)]
    starts = [b.first_sample for b in blocks]
    assert starts == list(np.cumsum([0] + [b.n_samples for b in blocks[:-1]]))
    whole = np.concatenate([b.samples for b in blocks])
    assert whole.dtype == np.int16
    np.testing.assert_array_equal(whole, adc(name))
    with pytest.raises(IndexError):
        replay.block_at(replay.n_blocks)


def test_non_integral_block_sizes_do_not_drift() -> None:
    replay = RecordReplay(record_path("mitdb/100"), block_ms=40.0)  # 14.4 samples a block
    sizes = [replay.block_at(k).n_samples for k in range(5)]
    assert sizes == [14, 14, 15, 14, 15]
    assert replay.block_at(1000).first_sample == 14400  # exactly 40 s in


def test_looping_continues_seamlessly() -> None:
    path = record_path("ptbxl/00003_hr")  # 10 s, 5000 samples at 500 Hz
    replay = RecordReplay(path, block_ms=30.0, loop=True)  # 15 samples: the seam cuts a block
    record = adc("ptbxl/00003_hr")
    n_blocks = 2 * 5000 // 15 + 3
    blocks = [replay.block_at(k) for k in range(n_blocks)]
    whole = np.concatenate([b.samples for b in blocks])
    np.testing.assert_array_equal(whole, np.concatenate([record, record, record])[: len(whole)])
    assert [b.first_sample for b in blocks] == [15 * k for k in range(n_blocks)]
    seam = blocks[5000 // 15]
    assert seam.first_sample < 5000 < seam.first_sample + seam.n_samples


def test_loop_false_async_iteration_ends_after_the_record() -> None:
    fake = FakeTime()
    replay = RecordReplay(
        record_path("ptbxl/00003_hr"),
        block_ms=40.0,
        loop=False,
        speed=1000.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )

    async def run() -> list[SampleBlock]:
        return [b async for b in replay.blocks()]

    blocks = asyncio.run(run())
    assert len(blocks) == 250
    np.testing.assert_array_equal(
        np.concatenate([b.samples for b in blocks]), adc("ptbxl/00003_hr")
    )


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_pacing_follows_the_schedule(speed: float) -> None:
    fake = FakeTime()
    replay = RecordReplay(
        record_path("mitdb/100"), block_ms=40.0, speed=speed, clock=fake.clock, sleep=fake.sleep
    )
    got = asyncio.run(take(replay, 50, fake))
    period_s = 0.040 / speed
    for k, (at_s, block) in enumerate(got):
        assert at_s == pytest.approx(1000.0 + k * period_s)
        assert block.first_sample == replay.block_at(k).first_sample
    assert len(fake.sleeps) == 49  # block 0 goes at once
    assert fake.sleeps == pytest.approx([period_s] * 49)


def test_pacing_never_drifts_when_the_consumer_takes_time() -> None:
    fake = FakeTime(work_s=0.013)  # 13 ms of work per 40 ms block
    replay = RecordReplay(record_path("mitdb/100"), clock=fake.clock, sleep=fake.sleep)
    got = asyncio.run(take(replay, 200, fake))
    assert [at for at, _ in got] == pytest.approx([1000.0 + 0.040 * k for k in range(200)])
    assert fake.sleeps == pytest.approx([0.040 - 0.013] * 199)


def test_a_late_consumer_catches_up_without_sleeping() -> None:
    fake = FakeTime(work_s=0.100)  # slower than real time: 100 ms of work per 40 ms block
    replay = RecordReplay(record_path("mitdb/100"), clock=fake.clock, sleep=fake.sleep)
    got = asyncio.run(take(replay, 20, fake))
    assert fake.sleeps == []
    assert [b.first_sample for _, b in got] == [replay.block_at(k).first_sample for k in range(20)]


def test_missing_record_names_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope" / "100")
    with pytest.raises(RecordNotFound, match=str(missing)):
        RecordReplay(missing)
    header_only = tmp_path / "x"
    header_only.with_suffix(".hea").write_text("x 1 360 10\nx.dat 16 200 16 0 0 0 0 II\n")
    with pytest.raises(RecordNotFound, match="x"):
        RecordReplay(str(header_only))


@pytest.mark.parametrize("kwargs", [{"speed": 0.0}, {"speed": -2.0}, {"block_ms": 1.0}])
def test_bad_settings_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RecordReplay(record_path("mitdb/100"), **kwargs)  # type: ignore[arg-type]


def test_blocks_are_read_only_views() -> None:
    block = RecordReplay(record_path("mitdb/100")).block_at(3)
    with pytest.raises(ValueError, match="read-only"):
        block.samples[0, 0] = 1


def test_leads_with_different_gains_share_one_gain(tmp_path: Path) -> None:
    """A real record written with lead 1 at half the gain is rescaled to the common gain."""
    rec = wfdb.rdrecord(record_path("ptbxl/00003_hr"), physical=False, sampto=1000)
    d = rec.d_signal[:, :2].astype(np.int64)
    d[:, 1] //= 2
    path = write_adc(tmp_path / "mixed", d, 500, ["I", "II"], "16", [1000.0, 500.0], 0)
    replay = RecordReplay(path, loop=False)
    assert replay.gain == 1000.0
    assert replay.n_blocks is not None
    samples = np.concatenate([replay.block_at(k).samples for k in range(replay.n_blocks)])
    np.testing.assert_array_equal(samples[:, 0], d[:, 0])
    np.testing.assert_array_equal(samples[:, 1], d[:, 1] * 2)


def test_a_detached_electrode_is_flat_with_its_lead_off_bit_set() -> None:
    from ambulink.ambulance_client.source import Detachment

    detach = Detachment("MLII", off_s=2.0, on_s=3.0, every_s=5.0)
    replay = RecordReplay(record_path("mitdb/119"), block_ms=40.0, detach=detach)
    plain = RecordReplay(record_path("mitdb/119"), block_ms=40.0)
    fs = replay.fs
    frames = [replay.frame_at(k, 1) for k in range(250)]  # 10 s
    samples = np.concatenate([f.samples for f in frames])
    original = np.concatenate([plain.block_at(k).samples for k in range(250)])
    t = np.arange(len(samples)) / fs
    off = ((t % 5.0) >= 2.0) & ((t % 5.0) < 3.0)
    assert np.all(samples[off, 0] == 0)  # MLII flat while off
    assert np.array_equal(samples[~off, 0], original[~off, 0])  # untouched otherwise
    assert np.array_equal(samples[:, 1], original[:, 1])  # V1 never
    bits = np.array([f.lead_off for f in frames])
    first_t = np.array([f.first_sample / fs for f in frames])
    inside = ((first_t % 5.0) >= 2.0) & ((first_t % 5.0) < 2.96)
    assert np.all(bits[inside] == 1) and np.all(bits[(first_t % 5.0) < 1.9] == 0)
    with pytest.raises(ConfigError, match="cannot detach lead 'II'"):
        RecordReplay(record_path("mitdb/119"), detach=Detachment("II", 1.0, 2.0, 5.0))
    with pytest.raises(ConfigError, match="off_s < on_s"):
        Detachment("MLII", 3.0, 2.0, 5.0)


def test_missing_samples_are_sent_as_a_lost_lead(tmp_path: Path) -> None:
    """Samples a record marks missing (its format's invalid value) go out as 0 mV with the
    lead's lead-off bit, as a monitor sends a lost electrode, never as a -2048 ADC spike; the
    other lead and the other frames are the record's, also across the loop seam."""
    rec = wfdb.rdrecord(record_path("mitdb/100"), physical=False, sampto=3600)
    d = np.asarray(rec.d_signal, dtype=np.int64)
    d[1000:1100, 1] = -2048  # format 212's invalid value: 100 samples of V5 missing
    path = write_adc(tmp_path / "gap", d, 360, ["MLII", "V5"], "212", [200.0, 200.0], 1024)
    replay = RecordReplay(path, block_ms=100.0, start_s=5.0)  # loops
    frames = [replay.frame_at(k, 1) for k in range(150)]  # 15 s: wraps once
    samples = np.concatenate([f.samples for f in frames])
    rows = (np.arange(len(samples)) + 1800) % 3600  # record row of each stream sample
    gap = (rows >= 1000) & (rows < 1100)
    assert gap.sum() == 100
    assert np.all(samples[gap, 1] == 0)
    assert np.array_equal(samples[~gap, 1], d[rows[~gap], 1] - 1024)
    assert np.array_equal(samples[:, 0], d[rows, 0] - 1024)
    firsts = np.array([f.first_sample for f in frames])
    hit = np.array([gap[i : i + 36].any() for i in firsts])
    assert [f.lead_off for f, h in zip(frames, hit, strict=True) if h] == [2] * int(hit.sum())
    assert all(f.lead_off == 0 for f, h in zip(frames, hit, strict=True) if not h)


def test_a_format_without_a_missing_sample_value_replays_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WFDB's first-difference format 8 has no missing-sample value and wfdb's conversion
    fails on it (wfdb cannot write one, so the failure is stood in for): nothing is lost."""

    def fails(self: object, *args: object, **kwargs: object) -> None:
        raise TypeError("Cannot cast array data from dtype('O') to dtype('float64')")

    monkeypatch.setattr(wfdb.Record, "dac", fails)
    replay = RecordReplay(record_path("mitdb/100"), loop=False)
    frame = replay.frame_at(0, 1)
    assert frame.lead_off == 0
    assert np.array_equal(frame.samples, adc("mitdb/100")[: frame.samples.shape[0]])
