"""The case store keeps every acknowledged frame exactly once, across reorder, duplicates, drops,
restarts and a writer killed mid-stream; it reads back, and exports as WFDB, the very samples of
a real record (MIT-BIH 100, bundled)."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Awaitable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import wfdb
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from ambulink.data import record_path
from ambulink.hub.store import (
    CaseConflict,
    CaseStore,
    FrameRecord,
    StorageUnavailable,
    StoreRejected,
    StreamConflict,
    UnknownCase,
    UnknownStream,
    open_case_store,
)
from ambulink.hub.store_seq import SeqTracker

ROOT = Path(__file__).resolve().parents[2]
FRAME_MS = 25
_T = TypeVar("_T")


def run(coro: Awaitable[_T], timeout_s: float = 60.0) -> _T:
    async def bounded() -> _T:
        async with asyncio.timeout(timeout_s):
            return await coro

    return asyncio.run(bounded())


@cache
def mitdb_100() -> tuple[NDArray[np.int16], float, list[str], int]:
    """Record 100 as ADC units around 0 (the wire carries no baseline), gain, leads, fs."""
    rec = wfdb.rdrecord(record_path("mitdb/100"), physical=False)
    assert len(set(rec.adc_gain)) == 1
    signal = np.asarray(rec.d_signal, dtype=np.int64) - np.asarray(rec.baseline)
    return signal.astype(np.int16), float(rec.adc_gain[0]), list(rec.sig_name), int(rec.fs)


def record_frames(seconds: float, stream_id: int = 1) -> list[FrameRecord]:
    """The first ``seconds`` of record 100 cut into 25 ms frames, as the tablet sends them."""
    signal, _, _, fs = mitdb_100()
    per_frame = fs * FRAME_MS // 1000
    n = int(seconds * fs) // per_frame * per_frame
    return [
        FrameRecord(
            stream_id=stream_id,
            seq=seq,
            first_sample=start,
            n_samples=per_frame,
            lead_off=0,
            payload=signal[start : start + per_frame].astype("<i2").tobytes(),
        )
        for seq, start in enumerate(range(0, n, per_frame))
    ]


async def new_case(store: CaseStore, case_id: str = "case1", stream_id: int = 1) -> str:
    _, gain, leads, fs = mitdb_100()
    await store.create_case("unit7", case_id)
    await store.open_stream(case_id, stream_id, fs, leads, gain, started_at=1_700_000_000.0)
    return case_id


def contiguous_of(seqs: set[int]) -> int:
    top = -1
    while top + 1 in seqs:
        top += 1
    return top


def missing_of(seqs: set[int], up_to: int) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for seq in range(up_to + 1):
        if seq in seqs:
            continue
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def row_counts(path: Path) -> tuple[int, int]:
    """(rows, distinct seqs) in the frames table, read with plain sqlite3."""
    with sqlite3.connect(path) as conn:
        rows, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT seq) FROM frames").fetchone()
    conn.close()
    return int(rows), int(distinct)


# ---- seq bookkeeping -------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=80), st.integers(-1, 70))
def test_seq_tracker_matches_a_set(seqs: list[int], up_to: int) -> None:
    tracker = SeqTracker()
    for seq in seqs:
        tracker.add(seq)
    assert tracker.contiguous == contiguous_of(set(seqs))
    assert tracker.highest == max(seqs, default=-1)
    assert tracker.missing(up_to) == missing_of(set(seqs), up_to)
    assert all(seq in tracker for seq in seqs)
    assert sum(seq in tracker for seq in range(100)) == len(set(seqs))


# ---- exactly once ----------------------------------------------------------------------------


@settings(max_examples=60)
@given(st.data())
def test_frames_are_stored_exactly_once_whatever_the_order(data: st.DataObject) -> None:
    frames = record_frames(seconds=4)  # 160 frames of 9 samples, 2 leads
    n = len(frames)
    dropped = data.draw(st.sets(st.integers(0, n - 1), max_size=n // 3), label="dropped")
    kept = [i for i in range(n) if i not in dropped]
    resent = data.draw(st.lists(st.sampled_from(kept), max_size=n // 2), label="resent")
    order = data.draw(st.permutations(kept + resent), label="order")
    sizes = data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=20), label="batch sizes")
    signal, _, _, _ = mitdb_100()

    async def scenario(path: Path) -> None:
        async with open_case_store(path) as store:
            case_id = await new_case(store)
            stored: set[int] = set()
            start, turn = 0, 0
            while start < len(order):
                batch = order[start : start + sizes[turn % len(sizes)]]
                start, turn = start + len(batch), turn + 1
                acks = await store.put_frames(case_id, [frames[i] for i in batch])
                stored.update(batch)
                assert acks == {1: contiguous_of(stored)}
            assert await store.contiguous_seq(case_id, 1) == contiguous_of(set(kept))
            assert await store.missing(case_id, 1, n - 1) == missing_of(set(kept), n - 1)
            back = await store.read_samples(case_id, 1)
        if not kept:
            assert back.samples.shape == (0, 2)
            return
        first = frames[kept[0]].first_sample
        assert back.first_sample == first
        for i in kept:
            f = frames[i]
            got = back.samples[f.first_sample - first : f.first_sample - first + f.n_samples]
            assert np.array_equal(got, signal[f.first_sample : f.first_sample + f.n_samples])
        holes = [i for i in range(kept[0], kept[-1] + 1) if i not in set(kept)]
        expected_gaps = missing_of(set(range(kept[0])) | set(kept), kept[-1])
        assert back.gaps == [
            (frames[a].first_sample, frames[b].first_sample + 9) for a, b in expected_gaps
        ]
        assert sum(b - a for a, b in back.gaps) == 9 * len(holes)
        assert row_counts(path) == (len(set(kept)), len(set(kept)))

    with tempfile.TemporaryDirectory() as folder:
        run(scenario(Path(folder) / "var" / "cases.sqlite3"))


def test_a_resent_frame_never_replaces_the_stored_one(tmp_path: Path) -> None:
    frames = record_frames(seconds=1)

    async def scenario() -> None:
        async with open_case_store(tmp_path / "cases.sqlite3") as store:
            case_id = await new_case(store)
            await store.put_frames(case_id, frames)
            forged = replace(frames[5], payload=bytes(len(frames[5].payload)))
            assert await store.put_frames(case_id, [forged]) == {1: len(frames) - 1}
            back = await store.read_samples(case_id, 1)
        original = np.frombuffer(frames[5].payload, "<i2").reshape(-1, 2)
        assert np.array_equal(back.samples[45:54], original)
        assert np.any(original != 0)

    run(scenario())
    assert row_counts(tmp_path / "cases.sqlite3") == (len(frames), len(frames))


def test_concurrent_writes_commit_together_and_a_bad_one_fails_alone(tmp_path: Path) -> None:
    frames = record_frames(seconds=3)

    async def scenario() -> None:
        async with open_case_store(tmp_path / "cases.sqlite3") as store:
            case_id = await new_case(store)
            await store.create_case("unit8", "case2")
            bad = replace(frames[0], payload=frames[0].payload[:-2])
            results = await asyncio.gather(
                *(store.put_frames(case_id, [frame]) for frame in frames[1:]),
                store.put_frames(case_id, [bad]),  # one byte pair short
                store.put_frames("case2", [frames[0]]),  # stream 1 never opened in case2
                store.put_vitals(case_id, 1.0, '{"hr": 70}'),
                return_exceptions=True,
            )
            assert all(r == {1: -1} for r in results[: len(frames) - 1])  # seq 0 still missing
            assert isinstance(results[-3], StoreRejected)
            assert "need 36 bytes, got 34" in str(results[-3])
            assert isinstance(results[-2], UnknownStream)
            assert results[-1] is None
            assert await store.put_frames(case_id, [frames[0]]) == {1: len(frames) - 1}
            assert await store.list_vitals(case_id) == [(1.0, '{"hr": 70}')]

    run(scenario())


# ---- durability ------------------------------------------------------------------------------


def test_everything_is_there_after_reopening(tmp_path: Path) -> None:
    frames = record_frames(seconds=5)
    kept = [f for f in frames if f.seq % 17 != 3]  # a few holes, as after an outage
    path = tmp_path / "cases.sqlite3"
    clock = iter([1000.0, 1001.0]).__next__

    async def write() -> None:
        async with open_case_store(path, clock=clock) as store:
            await new_case(store)
            await store.create_case("unit9", "case2")
            await store.put_frames("case1", kept)
            await store.put_vitals("case1", 10.0, '{"type": "vitals", "hr": 71}')
            await store.put_vitals("case1", 11.0, '{"type": "vitals", "hr": 72}')

    async def read_back() -> None:
        async with open_case_store(path) as store:
            cases = await store.list_cases()
            assert [(c.case_id, c.unit_id, c.created_at) for c in cases] == [
                ("case1", "unit7", 1000.0),
                ("case2", "unit9", 1001.0),
            ]
            [info] = await store.list_streams("case1")
            _, gain, leads, fs = mitdb_100()
            assert (info.fs, info.leads, info.gain, info.contiguous_seq, info.highest_seq) == (
                fs,
                leads,
                gain,
                2,
                len(frames) - 1,
            )
            assert await store.contiguous_seq("case1", 1) == 2
            assert await store.missing("case1", 1, len(frames) - 1) == [
                (seq, seq) for seq in range(len(frames)) if seq % 17 == 3
            ]
            samples = (await store.read_samples("case1", 1)).samples
            vitals = await store.list_vitals("case1", since=11.0)
        signal, _, _, _ = mitdb_100()
        for frame in kept:
            block = samples[frame.first_sample : frame.first_sample + frame.n_samples]
            assert np.array_equal(block, signal[frame.first_sample : frame.first_sample + 9])
        assert vitals == [(11.0, '{"type": "vitals", "hr": 72}')]

    run(write())
    run(read_back())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


WRITER = """
import asyncio, sys
from pathlib import Path
from ambulink.hub.store import open_case_store
from tests.hub.test_store import new_case, record_frames

async def main(path, synchronous):
    frames = record_frames(seconds=600)
    async with open_case_store(Path(path), synchronous=synchronous) as store:
        await new_case(store)
        for start in range(0, len(frames), 10):
            acks = await store.put_frames("case1", frames[start : start + 10])
            print("acked", acks[1], flush=True)   # the tablet would now drop these frames
    print("ran out of frames", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_a_killed_writer_loses_nothing_it_acknowledged(tmp_path: Path, synchronous: str) -> None:
    """SIGKILL, not a clean exit: no close, no checkpoint; acked frames are in the WAL only."""
    path = tmp_path / "cases.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), synchronous],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked = -1
    try:
        assert writer.stdout is not None
        for line in writer.stdout:
            assert line.startswith("acked"), line
            acked = int(line.split()[1])
            if acked >= 1500:
                break
    finally:
        writer.kill()
        _, errors = writer.communicate(timeout=30)
    assert acked >= 1500, errors
    assert Path(f"{path}-wal").stat().st_size > 0  # the data had not been checkpointed

    async def read_back() -> tuple[int, NDArray[np.int16]]:
        async with open_case_store(path) as store:
            contiguous = await store.contiguous_seq("case1", 1)
            return contiguous, (await store.read_samples("case1", 1)).samples

    contiguous, samples = run(read_back())
    assert contiguous >= acked
    n = (acked + 1) * 9
    assert np.array_equal(samples[:n], mitdb_100()[0][:n])


# ---- WFDB export -----------------------------------------------------------------------------


def test_export_wfdb_reads_back_as_the_source_record(tmp_path: Path) -> None:
    frames = record_frames(seconds=60)
    kept = [f for f in frames if f.seq not in (100, 101)]  # one 50 ms hole

    async def scenario() -> Path:
        async with open_case_store(tmp_path / "cases.sqlite3") as store:
            case_id = await new_case(store, case_id="0f3a9c")
            await store.put_frames(case_id, kept)
            return await store.export_wfdb(case_id, 1, tmp_path / "export")

    path = run(scenario())
    assert path == tmp_path / "export" / "0f3a9c_s1"
    signal, gain, leads, fs = mitdb_100()
    back = wfdb.rdrecord(str(path), physical=False)
    assert (back.fs, back.sig_name, back.units, back.fmt) == (fs, leads, ["mV"] * 2, ["16"] * 2)
    assert back.adc_gain == [gain, gain]
    n = len(frames) * 9
    hole = slice(100 * 9, 102 * 9)
    expected = signal[:n].astype(np.int64)
    expected[hole] = -32768
    assert np.array_equal(back.d_signal, expected)
    physical = wfdb.rdrecord(str(path)).p_signal
    source = wfdb.rdrecord(record_path("mitdb/100"), sampto=n).p_signal
    assert np.all(np.isnan(physical[hole]))
    keep = np.ones(n, dtype=bool)
    keep[hole] = False
    assert np.allclose(physical[keep], source[keep], atol=1e-9)


# ---- refusals --------------------------------------------------------------------------------


def test_streams_cases_and_frames_are_checked(tmp_path: Path) -> None:
    frames = record_frames(seconds=1)

    async def scenario() -> None:
        async with open_case_store(tmp_path / "cases.sqlite3") as store:
            case_id = await new_case(store)
            _, gain, leads, fs = mitdb_100()
            await store.open_stream(case_id, 1, fs, leads, gain, 1_700_000_000.0)  # same: fine
            with pytest.raises(StreamConflict, match="fs=360 Hz"):
                await store.open_stream(case_id, 1, 500, leads, gain, 1_700_000_000.0)
            assert await store.create_case("unit7", case_id) == case_id
            with pytest.raises(CaseConflict):
                await store.create_case("unit8", case_id)
            with pytest.raises(UnknownCase):
                await store.open_stream("nope", 1, fs, leads, gain, 0.0)
            with pytest.raises(UnknownCase):
                await store.put_vitals("nope", 0.0, "{}")
            with pytest.raises(UnknownStream, match="no stream 2"):
                await store.put_frames(case_id, [replace(frames[0], stream_id=2)])
            with pytest.raises(UnknownStream):
                await store.read_samples(case_id, 2)
            with pytest.raises(StoreRejected, match="opaque id"):
                await store.create_case("Jane Doe")
            with pytest.raises(StoreRejected, match="seq"):
                await store.put_frames(case_id, [replace(frames[0], seq=-1)])
            with pytest.raises(StoreRejected, match="gain"):
                await store.open_stream(case_id, 3, fs, leads, math.nan, 0.0)
            generated = await store.create_case("unit7")
            assert len(generated) == 32 and int(generated, 16) >= 0
            assert await store.contiguous_seq(case_id, 1) == -1  # nothing stored by refusals

    run(scenario())


def test_storage_trouble_is_storage_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-folder").mkdir()

    async def scenario() -> None:
        with pytest.raises(StorageUnavailable, match="could not open the case store"):
            await CaseStore.open(tmp_path / "a-folder")
        store = await CaseStore.open(tmp_path / "cases.sqlite3")
        await store.close()
        with pytest.raises(StorageUnavailable, match="closed"):
            await store.create_case("unit7")
        with pytest.raises(StorageUnavailable, match="closed"):
            await store.list_cases()

    run(scenario())
