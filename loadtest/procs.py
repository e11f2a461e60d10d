"""Child server processes (hub, echo peer) and CPU time read from ``/proc``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads included."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # stat fields 14 and 15
    return (utime + stime) * _TICK_S


def descendants(pid: int) -> list[int]:
    """Live child processes of ``pid``, their children, and so on (e.g. the hub's analysis
    worker, a child of the multiprocessing fork server the hub started)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants: a server's whole cost."""
    total = cpu_seconds(pid)
    for child in descendants(pid):
        try:
            total += cpu_seconds(child)
        except OSError:
            continue  # ended meanwhile
    return total


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each live thread of ``pid``, by native thread id."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        fields = text[text.rindex(")") + 2 :].split()
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) * _TICK_S
    return out


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (all cores; idle and iowait excluded)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in first]
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) * _TICK_S


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A ``python -m <module>`` child that prints ``ready <pid> <port>`` once it serves."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(cls, module: str, port: int, *args: str) -> ServerProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), *args],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert process.stdout is not None
        stdout = process.stdout
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                line = await asyncio.to_thread(stdout.readline)
        except TimeoutError:
            process.kill()
            process.wait()
            raise RuntimeError(f"{module} did not start within {READY_TIMEOUT_S} s") from None
        if not line.startswith(b"ready "):
            process.kill()
            process.wait()
            raise RuntimeError(f"{module} did not start: {line!r}")
        return cls(process, port)

    async def stop(self) -> None:
        """SIGINT (graceful lifespan shutdown), then SIGKILL after ``STOP_TIMEOUT_S``."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(asyncio.to_thread(self.process.wait), STOP_TIMEOUT_S)
        except TimeoutError:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)
