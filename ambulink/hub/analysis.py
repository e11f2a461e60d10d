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
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import select
import signal
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ambulink.errors import AmbulinkError
from ambulink.hub.settings import AnalysisMode
from ambulink.signal.analyzer import Analyzer, StreamEvent
from ambulink.signal.events import Beat, EvidenceWindow

logger = logging.getLogger(__name__)

StreamKey = tuple[str, int, int]  # (case id, stream id, the ingest's analyzer generation)


@dataclass(frozen=True)
class StreamSpec:
    """What an analyzer needs to know of its stream (from its ``stream_open``)."""

    key: StreamKey
    fs: float
    leads: tuple[str, ...]
    gain: float  # ADC units per mV


class AnalysisUnavailable(AmbulinkError):
    """The analysis worker process died; its streams restart their analysis."""

    code = "analysis_unavailable"


class StreamAnalysis(Protocol):
    async def feed(
        self, spec: StreamSpec, block: NDArray[np.int16], lead_off: list[bool] | None
    ) -> list[StreamEvent]: ...

    async def forget(self, key: StreamKey) -> None: ...

    def close(self) -> None: ...


Analyzers = dict[StreamKey, Analyzer]
_worker_analyzers: Analyzers = {}  # in the worker process: every stream's


def _feed(
    spec: StreamSpec,
    block: NDArray[np.int16],
    lead_off: list[bool] | None,
    analyzers: Analyzers | None = None,
) -> list[StreamEvent]:
    """Run in the executor: ``analyzers`` of this process, or the worker process's own."""
    held = _worker_analyzers if analyzers is None else analyzers
    analyzer = held.get(spec.key)
    if analyzer is None:
        analyzer = held[spec.key] = Analyzer(spec.fs, list(spec.leads), gain=spec.gain)
    return analyzer.feed(block, lead_off)


def _forget(key: StreamKey, analyzers: Analyzers | None = None) -> None:
    (_worker_analyzers if analyzers is None else analyzers).pop(key, None)


class _ExecutorAnalysis:
    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        # Thread mode: the analyzers live here; process mode: in the worker (None here).
        self._analyzers: Analyzers | None = (
            None if isinstance(executor, ProcessPoolExecutor) else {}
        )

    async def feed(
        self, spec: StreamSpec, block: NDArray[np.int16], lead_off: list[bool] | None
    ) -> list[StreamEvent]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, _feed, spec, block, lead_off, self._analyzers
        )

    async def forget(self, key: StreamKey) -> None:
        """Drop the stream's analyzer (its state); a later block starts a fresh one."""
        with contextlib.suppress(BrokenProcessPool):
            await asyncio.get_running_loop().run_in_executor(
                self._executor, _forget, key, self._analyzers
            )

    @property
    def streams(self) -> int:
        """Analyzers held in this process (thread mode; 0 in process mode)."""
        return len(self._analyzers or {})

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
        self._server_started = False

    @staticmethod
    def _start_fork_server() -> None:
        """Start the fork server with SIGINT and SIGTERM ignored, which it keeps through exec
        and hands to the workers it forks: Ctrl-C (to a terminal's process group) or a service
        manager's SIGTERM (to the whole group) must not kill it under the pool, which would
        take that for a dead worker, before the hub has stopped ingest. Python's fork server
        imports its preload modules (a second or more) before it ignores SIGINT itself. It
        still exits with the hub, when the hub's end of its "alive" pipe closes."""
        if threading.current_thread() is not threading.main_thread():
            multiprocessing.forkserver.ensure_running()  # signal dispositions: main thread only
            return
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _STOP_SIGNALS}
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @staticmethod
    def _pool() -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["ambulink.hub.analysis"])
        return ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
        )

    async def feed(
        self, spec: StreamSpec, block: NDArray[np.int16], lead_off: list[bool] | None
    ) -> list[StreamEvent]:
        if not self._server_started:  # on the first block: a hub without ECG never starts it
            self._start_fork_server()
            self._server_started = True
        try:
            return await super().feed(spec, block, lead_off)
        except BrokenProcessPool:
            logger.error("the analysis worker process died; starting a new one")
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._pool()
            self._server_started = False  # it may have died too
            raise AnalysisUnavailable(
                "the analysis worker process died; analysis restarts from the next block"
            ) from None


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _worker_start(hub_pid: int) -> None:
    """In the worker: Ctrl-C reaches a terminal's whole process group, and a service manager's
    SIGTERM often the whole control group, but stopping the worker is the hub's job (it shuts
    the pool down once ingest has stopped), not a signal that kills it mid-block. Should the hub
    die without doing so (killed), nothing would end the worker (it holds both ends of its own
    task queue): a watchdog ends it once the hub is gone."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(hub_pid,), name="hub-watch", daemon=True).start()


def _exit_with(hub_pid: int) -> None:
    """End this process once process ``hub_pid`` has ended."""
    try:
        watched = os.pidfd_open(hub_pid)
    except ProcessLookupError:  # already gone
        os._exit(0)
    except OSError:  # no pidfd on this kernel: nothing to watch with
        return
    select.select([watched], [], [])  # readable once the process has ended
    os._exit(0)


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
    for f in fields(item):
        value = getattr(item, f.name)
        if f.name in _POSITIONS and isinstance(value, int) and not isinstance(value, bool):
            changes[f.name] = value + offset
        elif isinstance(value, Beat | EvidenceWindow):
            changes[f.name] = _shifted(value, offset)
    return replace(item, **changes)


def open_analysis(mode: AnalysisMode) -> StreamAnalysis:
    """The hub's stream analysis: ``process`` (default) or ``thread``."""
    return ProcessAnalysis() if mode == "process" else ThreadAnalysis()
