"""FrameBuffer: store-and-forward on disk (DESIGN §3.3), with real ECG samples as frame bytes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import wfdb
from hypothesis import given
from hypothesis import strategies as st

from ambulink.ambulance_client.buffer import (
    DEFAULT_CAPACITY_BYTES,
    BufferConflict,
    BufferFull,
    FrameBuffer,
)
from ambulink.data import record_path
from ambulink.errors import AmbulinkError, ProtocolError

_FRAMES: list[bytes] = []


def real_frames(n: int) -> list[bytes]:
    """The first ``n`` 25 ms chunks of mitdb/100 (ADC int16, little-endian, interleaved)."""
    if len(_FRAMES) < n:
        rec = wfdb.rdrecord(record_path("mitdb/100"), physical=False)
        per_frame = int(rec.fs * 0.025)  # 9 samples at 360 Hz
        samples = rec.d_signal.astype("<i2")
        _FRAMES[:] = [
            samples[i : i + per_frame].tobytes()
            for i in range(0, len(samples) - per_frame + 1, per_frame)
        ]
    return _FRAMES[:n]


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[FrameBuffer]:
    with FrameBuffer.open(tmp_path / "buffer.sqlite") as buf:
        yield buf


def test_put_pending_ack_get_with_real_samples(buffer: FrameBuffer) -> None:
    frames = real_frames(400)
    for seq, data in enumerate(frames):
        buffer.put(7, seq, data)
    assert buffer.next_seq(7) == 400
    assert buffer.pending(7, limit=1000) == list(enumerate(frames))
    assert buffer.pending(7, after_seq=99, limit=10) == [(s, frames[s]) for s in range(100, 110)]

    assert buffer.ack(7, 149) == 150
    assert buffer.ack(7, 149) == 0  # a repeated ack trims nothing
    assert buffer.ack(7, 10) == 0  # an older ack neither
    assert [s for s, _ in buffer.pending(7, limit=1000)] == list(range(150, 400))

    got = buffer.get(7, [399, 3, 200, 200, 150, 1000])
    assert got == [(150, frames[150]), (200, frames[200]), (399, frames[399])]
    assert buffer.get(7, range(150, 400)) == list(enumerate(frames))[150:]  # > one IN chunk

    stats = buffer.stats()
    assert stats.frames == 250
    assert stats.bytes == sum(len(f) for f in frames[150:])
    assert stats.streams[7].oldest_unacked_seq == 150
    assert stats.streams[7].acked_seq == 149
    assert stats.capacity_bytes == DEFAULT_CAPACITY_BYTES


def test_streams_are_independent(buffer: FrameBuffer) -> None:
    frames = real_frames(20)
    for seq in range(10):
        buffer.put(1, seq, frames[seq])
        buffer.put(2, seq, frames[10 + seq])
    buffer.ack(1, 9)
    assert buffer.pending(1) == []
    assert buffer.pending(2) == [(s, frames[10 + s]) for s in range(10)]
    assert buffer.streams() == [1, 2]
    assert buffer.stats().streams[1].oldest_unacked_seq is None
    assert buffer.next_seq(1) == 10  # high-water mark kept after a full ack
    assert buffer.next_seq(3) == 0


def test_put_is_idempotent_and_refuses_different_bytes(buffer: FrameBuffer) -> None:
    a, b = real_frames(2)
    buffer.put(1, 0, a)
    buffer.put(1, 0, a)
    assert buffer.stats().frames == 1
    with pytest.raises(BufferConflict, match="seq 0"):
        buffer.put(1, 0, b)
    assert buffer.pending(1) == [(0, a)]
    buffer.ack(1, 0)
    buffer.put(1, 0, a)  # a late retry of an acked frame is not stored again
    assert buffer.pending(1) == []
    assert BufferConflict.code == "buffer_conflict"


def test_ack_beyond_what_was_put_is_refused(buffer: FrameBuffer) -> None:
    buffer.put(1, 0, real_frames(1)[0])
    with pytest.raises(ProtocolError, match="stream 1 seq 5"):
        buffer.ack(1, 5)
    with pytest.raises(ProtocolError):
        buffer.ack(2, 0)
    assert buffer.pending(1) != []


def test_reopen_keeps_unacked_frames_and_next_seq(tmp_path: Path) -> None:
    frames = real_frames(100)
    path = tmp_path / "sub" / "buffer.sqlite"
    with FrameBuffer.open(path) as buf:
        for seq, data in enumerate(frames):
            buf.put(3, seq, data)
        buf.ack(3, 59)
        buf.put(4, 0, frames[0])
        buf.ack(4, 0)
    with FrameBuffer.open(path) as buf:
        assert buf.pending(3, limit=1000) == list(enumerate(frames))[60:]
        assert buf.next_seq(3) == 100
        assert buf.next_seq(4) == 1  # fully acked stream keeps its high-water mark
        assert buf.stats().bytes == sum(len(f) for f in frames[60:])
        buf.put(3, 100, frames[0])
        assert buf.next_seq(3) == 101


def test_closed_buffer_says_so(tmp_path: Path) -> None:
    buf = FrameBuffer.open(tmp_path / "b.sqlite")
    buf.close()
    buf.close()
    with pytest.raises(AmbulinkError, match="closed"):
        buf.put(1, 0, b"x")


_WRITER = """
import os, sys
from pathlib import Path
from ambulink.ambulance_client.buffer import FrameBuffer
buf = FrameBuffer.open(Path(sys.argv[1]))
data = bytes.fromhex(sys.argv[2])
for seq in range(int(sys.argv[3])):
    buf.put(5, seq, data + seq.to_bytes(8, "little"))
os._exit(0)  # killed right after put() returned: no close, no atexit, no flush
"""


def test_frame_survives_a_writer_killed_right_after_put(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    data = real_frames(1)[0]
    subprocess.run(
        [sys.executable, "-c", _WRITER, str(path), data.hex(), "3"], check=True, timeout=60
    )
    with FrameBuffer.open(path) as buf:
        assert buf.pending(5) == [(s, data + s.to_bytes(8, "little")) for s in range(3)]
        assert buf.next_seq(5) == 3


def test_buffer_full_raises_and_loses_nothing(tmp_path: Path) -> None:
    frames = real_frames(50)
    size = len(frames[0])  # all 25 ms frames of mitdb/100 have the same size
    with FrameBuffer.open(tmp_path / "b.sqlite", capacity_bytes=10 * size) as buf:
        for seq in range(10):
            buf.put(1, seq, frames[seq])
        with pytest.raises(BufferFull, match="does not fit") as info:
            buf.put(1, 10, frames[10])
        assert info.value.code == "buffer_full"
        assert buf.pending(1) == list(enumerate(frames[:10]))
        assert buf.next_seq(1) == 10  # the refused frame did not advance the stream
        buf.ack(1, 4)
        for seq in range(10, 15):
            buf.put(1, seq, frames[seq])
        assert [s for s, _ in buf.pending(1)] == list(range(5, 15))
    with (
        FrameBuffer.open(tmp_path / "b.sqlite", capacity_bytes=10 * size) as buf,
        pytest.raises(BufferFull),  # the byte count is rebuilt on open
    ):
        buf.put(1, 15, frames[15])


def test_default_capacity_holds_an_hour_of_12_lead_500_hz() -> None:
    samples_bytes = 3600 * 500 * 12 * 2
    header_and_crc = 40  # DESIGN §3.2 header (36 B) + CRC-32
    frame_overhead = 3600 * 50 * header_and_crc  # 20 ms frames
    assert samples_bytes == 43_200_000
    assert samples_bytes + frame_overhead <= DEFAULT_CAPACITY_BYTES


# An operation: ("put", stream, seq), ("ack", stream, seq) or ("reopen", 0, 0).
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(1, 2), st.integers(0, 30)),
        st.tuples(st.just("ack"), st.integers(1, 2), st.integers(0, 30)),
        st.tuples(st.just("reopen"), st.just(0), st.just(0)),
    ),
    max_size=40,
)


@given(_ops)
def test_pending_is_exactly_the_unacked_set(ops: list[tuple[str, int, int]]) -> None:
    frames = real_frames(64)
    put: dict[int, set[int]] = {1: set(), 2: set()}
    acked = {1: -1, 2: -1}
    high = {1: -1, 2: -1}  # highest seq ever put: an ack beyond it is refused
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.sqlite"
        buf = FrameBuffer.open(path)
        try:
            for op, stream, seq in ops:
                if op == "put":
                    buf.put(stream, seq, frames[stream * 31 + seq - 31])
                    if seq > acked[stream]:
                        put[stream].add(seq)
                        high[stream] = max(high[stream], seq)
                elif op == "ack":
                    if seq > high[stream]:
                        with pytest.raises(ProtocolError):
                            buf.ack(stream, seq)
                        continue
                    trimmed = buf.ack(stream, seq)
                    gone = {s for s in put[stream] if s <= seq}
                    assert trimmed == len(gone)
                    put[stream] -= gone
                    acked[stream] = max(acked[stream], seq)
                else:
                    buf.close()
                    buf = FrameBuffer.open(path)
                for sid in (1, 2):
                    assert buf.pending(sid, limit=100) == [
                        (s, frames[sid * 31 + s - 31]) for s in sorted(put[sid])
                    ]
                    assert buf.next_seq(sid) == high[sid] + 1
        finally:
            buf.close()
