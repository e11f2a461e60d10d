"""Ingest: store every ECG frame exactly once, say what is durable, analyse each stream in order.

The uplink hands over decoded frames; ``Ingest`` writes them to the case store in one
transaction per batch and returns, per stream, the highest contiguous durable sequence number
(what the uplink acks). Stored frames are published on the bus for viewers, and fed to the
stream's ``Analyzer`` strictly in sequence order: a frame that arrives ahead of a gap (backfill
after an outage) waits until the gap is filled, and the events it yields are flagged
``delayed``. Analysis runs in a worker process (``hub/analysis.py``; a thread if configured) so
the event loop never waits on numpy.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from ambulink.errors import SignalError
from ambulink.hub.analysis import AnalysisUnavailable, StreamAnalysis, StreamSpec, shift_event
from ambulink.hub.bus import Bus
from ambulink.hub.store import CaseStore, FrameRecord
from ambulink.protocol.ecg_frame import EcgFrame, encode_ecg_frame, pack_ecg_frames
from ambulink.protocol.messages import StreamOpen, Vitals, encode_message
from ambulink.signal.analyzer import StreamEvent
from ambulink.signal.events import EpisodeEnd, EpisodeStart
from ambulink.signal.st import StemiCleared, StemiSuspected

logger = logging.getLogger(__name__)

DELAYED_AFTER_S = 5.0  # an event decided on data older than this is reported as delayed
STREAM_IDLE_S = 15 * 60.0  # a stream with nothing stored this long drops its analysis state
RETIRE_EVERY_S = 60.0
WAVEFORM_KEEP = 3000  # entries kept per case on the bus (a minute or more: each is 1+ frames)


def ecg_topic(case_id: str) -> str:
    return f"case:{case_id}:ecg"


def events_topic(case_id: str) -> str:
    return f"case:{case_id}:events"


def vitals_topic(case_id: str) -> str:
    return f"case:{case_id}:vitals"


@dataclass
class StreamState:
    """One ECG stream being ingested: its analyzer and the frames waiting for a gap to fill."""

    case_id: str
    opened: StreamOpen
    next_seq: int = 0
    last_stored_at: float = 0.0  # clock time of the last stored batch
    sample_offset: int | None = None  # stream sample of the analyzer's first sample
    task: asyncio.Task[None] | None = None  # its analysis, in sequence order
    generation: int = 0  # tells this analyzer from an earlier or later one of the stream
    waiting: dict[int, EcgFrame] = field(default_factory=dict)
    queue: asyncio.Queue[list[EcgFrame]] = field(default_factory=asyncio.Queue)


def event_json(
    event: StreamEvent, opened: StreamOpen, *, now: float, fs: float
) -> dict[str, object]:
    """An analysis event as JSON-ready data, with wall times and the ``delayed`` flag."""
    data: dict[str, object]
    if isinstance(event, StemiSuspected):
        result = event.result
        data = {
            "kind": event.kind,
            "sample": event.sample,
            "territories": list(event.territories),
            "reasons": list(result.reasons),
            "notes": list(result.notes),  # what could not be judged, electrodes to check
            "confounders": list(result.confounders),
            "st_j60_mv": {
                lead: round(st.st_j60_mv, 3) for lead, st in result.per_lead.items() if st.evaluable
            },
            "evidence": {"start": event.evidence.start, "end": event.evidence.end},
        }
    elif isinstance(event, StemiCleared):
        data = {"kind": event.kind, "sample": event.sample}
    else:
        data = asdict(event)
    data["stream_id"] = opened.stream_id
    sample = _event_sample(event)
    at = opened.started_at + sample / fs
    data["at"] = at
    data["delayed"] = now - at > DELAYED_AFTER_S
    if isinstance(event, EpisodeStart):
        data["onset_at"] = opened.started_at + event.onset / fs
    return data


def _event_sample(event: StreamEvent) -> int:
    if isinstance(event, EpisodeStart | EpisodeEnd):
        return event.decided_at
    if hasattr(event, "beat"):
        return int(event.beat.sample)
    return int(getattr(event, "sample", 0))


class Ingest:
    """Frames in, durable acks and analysis events out. Shared by the uplinks of one hub."""

    def __init__(
        self,
        store: CaseStore,
        bus: Bus,
        analysis: StreamAnalysis,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._bus = bus
        self._analysis = analysis
        self._clock = clock
        self._streams: dict[tuple[str, int], StreamState] = {}
        # Streams idle for STREAM_IDLE_S: their analysis state is dropped (memory), their
        # StreamOpen kept so frames that still come (a late backfill) restart an analysis.
        self._retired: dict[tuple[str, int], StreamOpen] = {}
        self._generations = itertools.count()
        self._tasks: asyncio.TaskGroup | None = None
        self.listeners: list[Callable[[str, dict[str, object]], Awaitable[None]]] = []
        # Told each stream opened for the first time in this process: the case timeline.
        self.open_listeners: list[Callable[[StreamOpen], Awaitable[None]]] = []
        # Told (stream, end sample) of each stored batch: the fleet's data age.
        self.stored_listeners: list[Callable[[StreamOpen, int], None]] = []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Ingest]:
        """Own the per-stream analysis tasks for the lifetime of the hub."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            sweeping = tasks.create_task(self._retire_forever())
            try:
                yield self
            finally:
                sweeping.cancel()
                self._tasks = None
                for state in self._streams.values():
                    state.queue.put_nowait([])  # a sentinel: stop

    @property
    def streams(self) -> int:
        """Streams with analysis state in this hub."""
        return len(self._streams)

    async def retire_idle(self, idle_s: float = STREAM_IDLE_S) -> list[tuple[str, int]]:
        """Drop the analysis state of streams with nothing stored for ``idle_s``; their keys."""
        now = self._clock()
        idle = [k for k, s in self._streams.items() if now - s.last_stored_at >= idle_s]
        for key in idle:
            state = self._streams.pop(key)
            self._retired[key] = state.opened
            state.queue.put_nowait([])  # its analysis task ends after what it still holds
            if state.task is not None:
                await asyncio.wait([state.task])
            await self._analysis.forget((*key, state.generation))
        return idle

    async def _retire_forever(self) -> None:
        while True:
            await asyncio.sleep(RETIRE_EVERY_S)
            await self.retire_idle()

    def _start(self, opened: StreamOpen, next_seq: int) -> StreamState:
        if self._tasks is None:
            raise RuntimeError("Ingest used outside Ingest.running()")
        state = StreamState(opened.case_id, opened, next_seq, self._clock())
        state.generation = next(self._generations)
        self._streams[(opened.case_id, opened.stream_id)] = state
        self._retired.pop((opened.case_id, opened.stream_id), None)
        state.task = self._tasks.create_task(self._analyse(state))
        return state

    async def open_stream(self, opened: StreamOpen) -> int:
        """Register a stream (idempotent across reconnects); returns its contiguous durable seq."""
        key = (opened.case_id, opened.stream_id)
        await self._store.open_stream(
            opened.case_id,
            opened.stream_id,
            opened.fs,
            list(opened.leads),
            opened.gain,
            opened.started_at,
        )
        contiguous = await self._store.contiguous_seq(opened.case_id, opened.stream_id)
        if key not in self._streams:
            # A hub restart (or a stream idle for long): analysis resumes after what is stored
            # (earlier data is not re-analysed; its events were published before).
            self._start(opened, contiguous + 1)
            for listener in self.open_listeners:
                await listener(opened)
        return contiguous

    async def contiguous_seq(self, case_id: str, stream_id: int) -> int:
        """Highest contiguous durable seq of a stream (-1 when none)."""
        return await self._store.contiguous_seq(case_id, stream_id)

    async def missing(self, case_id: str, stream_id: int, up_to_seq: int) -> list[tuple[int, int]]:
        """Inclusive seq ranges of the stream not stored in ``[0, up_to_seq]``."""
        return await self._store.missing(case_id, stream_id, up_to_seq)

    async def store_frames(self, case_id: str, frames: Sequence[EcgFrame]) -> dict[int, int]:
        """Write ``frames`` durably; returns {stream_id: highest contiguous durable seq}."""
        records = [
            FrameRecord(
                stream_id=f.stream_id,
                seq=f.seq,
                first_sample=f.first_sample,
                n_samples=f.n_samples,
                lead_off=f.lead_off,
                payload=np.ascontiguousarray(f.samples, dtype="<i2").tobytes(),
            )
            for f in frames
        ]
        acks = await self._store.put_frames(case_id, records)
        by_stream: dict[int, list[EcgFrame]] = {}
        for frame in frames:
            by_stream.setdefault(frame.stream_id, []).append(frame)
        for stream_id, batch in by_stream.items():
            key = (case_id, stream_id)
            state = self._streams.get(key)
            if state is None and key in self._retired:  # frames after a long silence
                state = self._start(self._retired[key], min(f.seq for f in batch))
            if state is not None:
                state.last_stored_at = self._clock()
                state.queue.put_nowait(batch)
                for told in self.stored_listeners:
                    told(state.opened, max(f.first_sample + f.n_samples for f in batch))
            # One bus entry per stored batch (frames back to back), not one per frame.
            for packed in pack_ecg_frames([encode_ecg_frame(f) for f in batch]):
                await self._bus.append(ecg_topic(case_id), {"frames": packed}, maxlen=WAVEFORM_KEEP)
        return acks

    async def store_vitals(self, vitals: Vitals) -> None:
        text = encode_message(vitals)
        await self._store.put_vitals(vitals.case_id, vitals.at, text)
        await self._bus.append(vitals_topic(vitals.case_id), {"json": text}, maxlen=1000)

    async def publish_event(self, case_id: str, data: dict[str, object]) -> None:
        """Publish a hub event (analysis or technical, e.g. no signal) to the case's viewers and
        to the listeners (the alarm service)."""
        await self._bus.append(events_topic(case_id), {"json": json.dumps(data)}, maxlen=10_000)
        for listener in self.listeners:
            await listener(case_id, data)

    async def _analyse(self, state: StreamState) -> None:
        fs = float(state.opened.fs)
        opened = state.opened
        key = (state.case_id, opened.stream_id, state.generation)
        spec = StreamSpec(key, fs, tuple(opened.leads), opened.gain)
        while True:
            batch = await state.queue.get()
            if not batch:
                return
            for frame in batch:
                if frame.seq >= state.next_seq:
                    state.waiting[frame.seq] = frame
            ready: list[EcgFrame] = []
            while state.next_seq in state.waiting:
                ready.append(state.waiting.pop(state.next_seq))
                state.next_seq += 1
            if not ready:
                continue
            block = np.concatenate([f.samples for f in ready])
            if state.sample_offset is None:  # a new analyzer counts from its first block
                state.sample_offset = ready[0].first_sample
            lead_off = _lead_off_flags(ready, len(state.opened.leads))
            try:
                events = await self._analysis.feed(spec, block, lead_off)
            except (SignalError, AnalysisUnavailable) as exc:
                if isinstance(exc, AnalysisUnavailable):
                    state.sample_offset = None  # the next block starts a fresh analyzer
                # Data the analysis cannot take (it never should, frames are checked on
                # arrival), or its worker process died: announce it as a technical event and
                # keep the stream going.
                logger.error(
                    "analysis of stream %d refused a block: %s", state.opened.stream_id, exc
                )
                await self.publish_event(
                    state.case_id,
                    {
                        "kind": "analysis_error",
                        "stream_id": state.opened.stream_id,
                        "at": self._clock(),
                    },
                )
                continue
            events = [shift_event(e, state.sample_offset) for e in events]
            now = self._clock()
            for event in events:
                if event.kind in ("beat", "hr"):
                    continue  # too frequent for the bus; viewers derive rate from hr below
                await self.publish_event(
                    state.case_id, event_json(event, state.opened, now=now, fs=fs)
                )
            rates = [e for e in events if e.kind == "hr"]
            if rates:
                await self.publish_event(
                    state.case_id, event_json(rates[-1], state.opened, now=now, fs=fs)
                )


def _lead_off_flags(frames: Sequence[EcgFrame], n_leads: int) -> list[bool] | None:
    mask = 0
    for frame in frames:
        mask |= frame.lead_off
    if not mask:
        return None
    return [bool(mask >> i & 1) for i in range(n_leads)]
