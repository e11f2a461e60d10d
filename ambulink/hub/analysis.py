"""Where the hub runs each ECG stream's ``Analyzer``: a worker process (default) or a thread.

The analysis of a 12-lead stream costs about as much CPU as the rest of its ingest (transport,
store, bus) together. In a thread it shares the event loop's GIL, and near a full core the
loop's latency grows with it; in a worker process the loop keeps its own interpreter. One
worker process holds every stream's analyzer (their state lives there), fed in sequence order
by ``Ingest``. The worker is started on the first block and from a fork server that has
already imported the analysis code, so a hub that never sees ECG never starts it.

If the worker dies (killed, out of memory), the next block gets ``AnalysisUnavailable``; the
pool is replaced and each stream starts a fresh analyzer from its next block (the ingest
announces it as a technical event: analysis history before the crash is lost, no sample is).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ambulink.errors import AmbulinkError
from ambulink.hub.settings import AnalysisMode
from ambulink.signal.analyzer import Analyzer, StreamEvent
from ambulink.signal.events import Beat, EvidenceWindow

logger = logging.getLogger(__name__)

StreamKey = tuple[str, int]  # (case id, stream id)


class AnalysisUnavailable(AmbulinkError):
    """The analysis worker process died; its streams restart their analysis."""

    code = "analysis_unavailable"


class StreamAnalysis(Protocol):
    async def feed(
        self,
        key: StreamKey,
        fs: float,
        leads: list[str],
        gain: float,
        block: NDArray[np.int16],
        lead_off: list[bool] | None,
    ) -> list[StreamEvent]: ...

    async def forget(self, key: StreamKey) -> None: ...

    def close(self) -> None: ...


def _feed(
    analyzers: dict[StreamKey, Analyzer],
    key: StreamKey,
    fs: float,
    leads: list[str],
    gain: float,
    block: NDArray[np.int16],
    lead_off: list[bool] | None,
) -> list[StreamEvent]:
    analyzer = analyzers.get(key)
    if analyzer is None:
        analyzer = analyzers[key] = Analyzer(fs, leads, gain=gain)
    return analyzer.feed(block, lead_off)


_worker_analyzers: dict[StreamKey, Analyzer] = {}  # in the worker process: every stream's


def _feed_in_worker(
    key: StreamKey,
    fs: float,
    leads: list[str],
    gain: float,
    block: NDArray[np.int16],
    lead_off: list[bool] | None,
) -> list[StreamEvent]:
    return _feed(_worker_analyzers, key, fs, leads, gain, block, lead_off)


def _forget_in_worker(key: StreamKey) -> None:
    _worker_analyzers.pop(key, None)


class _ExecutorAnalysis:
    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._analyzers: dict[StreamKey, Analyzer] = {}  # thread mode: here, in this process

    async def feed(
        self,
        key: StreamKey,
        fs: float,
        leads: list[str],
        gain: float,
        block: NDArray[np.int16],
        lead_off: list[bool] | None,
    ) -> list[StreamEvent]:
        loop = asyncio.get_running_loop()
        if isinstance(self._executor, ProcessPoolExecutor):
            return await loop.run_in_executor(
                self._executor, _feed_in_worker, key, fs, leads, gain, block, lead_off
            )
        return await loop.run_in_executor(
            self._executor, _feed, self._analyzers, key, fs, leads, gain, block, lead_off
        )

    async def forget(self, key: StreamKey) -> None:
        """Drop the stream's analyzer (its state); a later block starts a fresh one."""
        if isinstance(self._executor, ProcessPoolExecutor):
            with contextlib.suppress(BrokenProcessPool):
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, _forget_in_worker, key
                )
        else:
            self._analyzers.pop(key, None)

    @property
    def streams(self) -> int:
        """Analyzers held in this process (thread mode; 0 in process mode)."""
        return len(self._analyzers)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class ThreadAnalysis(_ExecutorAnalysis):
    """Analyzers in this process, on one worker thread (shares the event loop's GIL)."""

    def __init__(self) -> None:
        super().__init__(ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis"))


class ProcessAnalysis(_ExecutorAnalysis):
    """Analyzers in one worker process, forked from a server that preloaded the analysis."""

    def __init__(self) -> None:
        super().__init__(self._pool())

    @staticmethod
    def _pool() -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["ambulink.hub.analysis"])
        return ProcessPoolExecutor(max_workers=1, mp_context=context)

    async def feed(
        self,
        key: StreamKey,
        fs: float,
        leads: list[str],
        gain: float,
        block: NDArray[np.int16],
        lead_off: list[bool] | None,
    ) -> list[StreamEvent]:
        try:
            return await super().feed(key, fs, leads, gain, block, lead_off)
        except BrokenProcessPool:
            logger.error("the analysis worker process died; starting a new one")
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._pool()
            raise AnalysisUnavailable(
                "the analysis worker process died; analysis restarts from the next block"
            ) from None


_POSITIONS = ("sample", "onset", "decided_at", "start", "end")


def shift_event(event: StreamEvent, offset: int) -> StreamEvent:
    """``event`` with its sample positions moved by ``offset``: an analyzer started mid-stream
    (after a hub restart, an idle stream taken up again, a replaced worker) counts from its
    first block, the stream from its first sample."""
    if offset == 0:
        return event
    shifted: StreamEvent = _shifted(event, offset)
    return shifted


def _shifted(item: Any, offset: int) -> Any:
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if f.name in _POSITIONS and isinstance(value, int) and not isinstance(value, bool):
            changes[f.name] = value + offset
        elif isinstance(value, Beat | EvidenceWindow):
            changes[f.name] = _shifted(value, offset)
    return dataclasses.replace(item, **changes)


def open_analysis(mode: AnalysisMode) -> StreamAnalysis:
    """The hub's stream analysis: ``process`` (default) or ``thread``."""
    return ProcessAnalysis() if mode == "process" else ThreadAnalysis()
