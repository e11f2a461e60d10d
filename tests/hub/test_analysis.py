"""Stream analysis off the event loop: a worker process (default) or a thread, same events."""

from __future__ import annotations

import asyncio
import os
import signal

import numpy as np
import pytest
import wfdb

from ambulink.data import record_path
from ambulink.hub.analysis import (
    AnalysisUnavailable,
    ProcessAnalysis,
    StreamAnalysis,
    StreamSpec,
    ThreadAnalysis,
    shift_event,
)
from ambulink.signal.analyzer import Analyzer, StreamEvent
from ambulink.signal.events import BeatEvent, EpisodeStart

BLOCK = 60  # samples per feed: a few 40 ms frames, as the ingest hands them over


def record() -> tuple[np.ndarray, float, list[str], float]:
    """The first 3 minutes of VFDB 418 (runs of VT and VF), in ADC units."""
    rec = wfdb.rdrecord(record_path("vfdb/418"), physical=False, sampto=250 * 180)
    adc = (rec.d_signal - np.asarray(rec.baseline)).astype(np.int16)
    return adc, float(rec.fs), list(rec.sig_name), float(rec.adc_gain[0])


def direct(adc: np.ndarray, fs: float, leads: list[str], gain: float) -> list[StreamEvent]:
    analyzer = Analyzer(fs, leads, gain=gain)
    events: list[StreamEvent] = []
    for start in range(0, len(adc), BLOCK):
        events += analyzer.feed(adc[start : start + BLOCK])
    return events


async def through(
    analysis: StreamAnalysis, adc: np.ndarray, fs: float, leads: list[str], gain: float
) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    try:
        for start in range(0, len(adc), BLOCK):
            spec = StreamSpec(("case-1", 1, 0), fs, tuple(leads), gain)
            events += await analysis.feed(spec, adc[start : start + BLOCK], None)
    finally:
        analysis.close()
    return events


@pytest.mark.parametrize("mode", [ProcessAnalysis, ThreadAnalysis], ids=["process", "thread"])
def test_events_are_those_of_an_analyzer_fed_directly(mode: type[StreamAnalysis]) -> None:
    adc, fs, leads, gain = record()
    expected = direct(adc, fs, leads, gain)
    starts = {getattr(e, "label", None) for e in expected if e.kind == "episode_start"}
    assert {"VF", "VT"} <= starts  # a record with something to find
    assert asyncio.run(through(mode(), adc, fs, leads, gain)) == expected


def test_a_killed_worker_is_replaced_and_analysis_goes_on() -> None:
    adc, fs, leads, gain = record()

    async def scenario() -> tuple[int, int]:
        analysis = ProcessAnalysis()
        try:
            spec = StreamSpec(("case-2", 1, 0), fs, tuple(leads), gain)
            await analysis.feed(spec, adc[:BLOCK], None)
            pool = analysis._executor
            (pid,) = pool._processes  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(AnalysisUnavailable, match="restarts"):
                await analysis.feed(spec, adc[BLOCK : 2 * BLOCK], None)
            # A fresh worker and analyzer: the rest of the record is analysed from here.
            events: list[StreamEvent] = []
            for start in range(2 * BLOCK, len(adc), BLOCK):
                events += await analysis.feed(spec, adc[start : start + BLOCK], None)
            (new_pid,) = analysis._executor._processes  # type: ignore[attr-defined]
            return len([e for e in events if e.kind == "beat"]), new_pid - pid
        finally:
            analysis.close()

    beats, moved = asyncio.run(scenario())
    assert beats > 100 and moved != 0


def test_events_of_an_analyzer_started_mid_stream_are_moved_to_stream_positions() -> None:
    adc, fs, leads, gain = record()
    offset = 30 * 250  # the analyzer saw the stream from 30 s on
    whole = direct(adc, fs, leads, gain)
    late = [shift_event(e, offset) for e in direct(adc[offset:], fs, leads, gain)]
    starts = [e for e in late if isinstance(e, EpisodeStart)]
    assert starts and all(e.onset >= offset and e.decided_at >= e.onset for e in starts)
    assert all(e.evidence.end - e.evidence.start == 10 * 250 for e in starts)
    assert all(e.evidence.end > offset for e in starts)
    # Beats found by both analyzers away from the join sit at the same stream samples.
    beats_whole = {e.beat.sample for e in whole if isinstance(e, BeatEvent)}
    beats_late = {e.beat.sample for e in late if isinstance(e, BeatEvent)}
    after_join = {s for s in beats_late if s > offset + 20 * 250}
    assert len(after_join & beats_whole) >= 0.95 * len(after_join) > 50
    assert shift_event(starts[0], 0) is starts[0]


def test_monitor_lead_off_bits_move_the_analysis_to_the_backup_lead() -> None:
    from ambulink.hub.ingest import event_json
    from ambulink.protocol.messages import StreamOpen
    from ambulink.signal.events import AnalysisLeadEvent

    rec = wfdb.rdrecord(record_path("mitdb/100"), physical=False, sampto=360 * 120)
    adc = (rec.d_signal - np.asarray(rec.baseline)).astype(np.int16)
    fs, leads, gain = float(rec.fs), list(rec.sig_name), float(rec.adc_gain[0])
    off_from, off_to = int(40 * fs), int(80 * fs)

    async def run() -> list[StreamEvent]:
        analysis = ThreadAnalysis()
        events: list[StreamEvent] = []
        try:
            spec = StreamSpec(("case-1", 1, 0), fs, tuple(leads), gain)
            for start in range(0, len(adc), BLOCK):
                off = off_from <= start < off_to  # the monitor says MLII's electrode is off
                events += await analysis.feed(spec, adc[start : start + BLOCK], [off, False])
        finally:
            analysis.close()
        return events

    events = asyncio.run(run())
    moves = [e for e in events if isinstance(e, AnalysisLeadEvent)]
    assert [(e.lead, e.backup) for e in moves] == [("V5", True), ("MLII", False)]
    assert abs(moves[0].sample - off_from) <= fs  # judged per 1 s block
    beats = [e.beat.sample for e in events if isinstance(e, BeatEvent)]
    during = [b for b in beats if off_from + fs <= b < off_to - fs]
    assert len(during) >= 0.9 * (off_to - off_from - 2 * fs) / fs  # ~75 /min go on from V5
    opened = StreamOpen(
        case_id="case-1", unit_id="amb-1", stream_id=1, fs=360, leads=leads, gain=gain,
        started_at=1_800_000_000.0,
    )  # fmt: skip
    data = event_json(moves[0], opened, now=1_800_000_100.0, fs=fs)
    assert {k: data[k] for k in ("kind", "lead", "backup", "stream_id")} == {
        "kind": "analysis_lead",
        "lead": "V5",
        "backup": True,
        "stream_id": 1,
    }
    assert data["at"] == pytest.approx(1_800_000_000.0 + moves[0].sample / fs)


def test_a_sigterm_to_the_whole_group_does_not_kill_the_analysis_under_the_hub() -> None:
    # A service manager stopping the hub sends SIGTERM to every process of its group; the hub
    # then stops ingest and shuts the pool down itself. The worker and its fork server must
    # still be there for the blocks ingest hands over meanwhile.
    import multiprocessing.forkserver

    adc, fs, leads, gain = record()

    async def scenario() -> int:
        analysis = ProcessAnalysis()
        try:
            spec = StreamSpec(("case-3", 1, 0), fs, tuple(leads), gain)
            await analysis.feed(spec, adc[:BLOCK], None)
            (worker,) = analysis._executor._processes  # type: ignore[attr-defined]
            server = multiprocessing.forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
            assert server is not None
            for pid in (server, worker):
                os.kill(pid, signal.SIGTERM)
            beats = 0
            for start in range(BLOCK, len(adc), BLOCK):  # would raise AnalysisUnavailable
                events = await analysis.feed(spec, adc[start : start + BLOCK], None)
                beats += sum(e.kind == "beat" for e in events)
            assert analysis._executor._processes.keys() == {worker}  # type: ignore[attr-defined]
            return beats
        finally:
            analysis.close()

    assert asyncio.run(scenario()) > 100


HUB_THAT_DIES = """
import asyncio, multiprocessing.forkserver, os, sys
import numpy as np
from ambulink.hub.analysis import ProcessAnalysis, StreamSpec

async def main():
    analysis = ProcessAnalysis()
    spec = StreamSpec(("case-4", 1, 0), 250.0, ("ECG",), 200.0)
    await analysis.feed(spec, np.zeros((60, 1), dtype=np.int16), None)
    (worker,) = analysis._executor._processes
    print(worker, multiprocessing.forkserver._forkserver._forkserver_pid, flush=True)
    os._exit(0)  # killed: no shutdown of the pool

asyncio.run(main())
"""


def test_the_worker_and_its_fork_server_end_when_the_hub_is_killed() -> None:
    # The worker holds both ends of its task queue and ignores SIGINT/SIGTERM: without its
    # watchdog it would outlive a hub killed without shutting the pool down, for ever.
    import select
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", HUB_THAT_DIES], capture_output=True, text=True, timeout=60
    )
    worker, server = (int(pid) for pid in done.stdout.split())
    ended = []
    for pid in (worker, server):
        try:
            watched = os.pidfd_open(pid)
        except ProcessLookupError:
            ended.append(pid)  # already gone
            continue
        readable, _, _ = select.select([watched], [], [], 30.0)  # bounded wait for its end
        os.close(watched)
        if readable:
            ended.append(pid)
        else:
            os.kill(pid, signal.SIGKILL)  # do not leave it behind
    assert ended == [worker, server]


def test_a_stemi_event_carries_the_analysis_notes() -> None:
    from ambulink.hub.ingest import event_json
    from ambulink.protocol.messages import StreamOpen
    from ambulink.signal.st import StemiSuspected, analyze

    rec = wfdb.rdrecord(record_path("ptbdb/s0010_re"), channels=list(range(12)), sampto=10_000)
    signals = np.asarray(rec.p_signal).copy()
    signals[:, 1] = 0.3  # lead II flat: the analysis says it could not judge it
    result = analyze(signals, rec.fs, rec.sig_name)
    assert result.stemi
    event = StemiSuspected(10_000, result.territories, result, result.evidence)
    opened = StreamOpen(
        case_id="case-1", unit_id="amb-3", stream_id=2, fs=1000, leads=list(rec.sig_name),
        gain=1.0, started_at=1_800_000_000.0,
    )  # fmt: skip
    data = event_json(event, opened, now=1_800_000_010.0, fs=float(rec.fs))
    assert data["reasons"] == list(result.reasons)
    assert data["notes"] == list(result.notes)
    assert any("II" in note for note in data["notes"])  # type: ignore[attr-defined]
