"""Start real servers (redis-server, mosquitto, ...) on free loopback ports for tests.

Never a machine's default port and never someone else's server: each run starts its own.
"""

from __future__ import annotations

import collections
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

# Ports a developer's own servers are likely to use: never handed out to a test server.
_WELL_KNOWN = {1883, 5432, 6379, 8000, 8080, 8883}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then release)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _WELL_KNOWN:
            return port


def require_binary(name: str, hint: str) -> str:
    """Path of executable ``name``; skips the test with ``hint`` when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({hint})")
    return path


class Server:
    """A started server process; its output keeps draining so it never blocks on a pipe."""

    def __init__(self, proc: subprocess.Popen[str], tail: collections.deque[str]) -> None:
        self.proc = proc
        self._tail = tail

    def output(self) -> str:
        """The last lines the server printed (for failure messages)."""
        return "".join(self._tail)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_server(argv: list[str], ready: str, timeout_s: float = 10.0) -> Server:
    """Start a loopback server and return once it prints ``ready``; raise with its output if
    it exits or stays silent for ``timeout_s``."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    tail: collections.deque[str] = collections.deque(maxlen=50)
    seen = threading.Event()
    ended = threading.Event()

    def drain() -> None:
        for line in proc.stdout or ():
            tail.append(line)
            if ready in line:
                seen.set()
        ended.set()

    threading.Thread(target=drain, name=f"drain-{argv[0]}", daemon=True).start()
    server = Server(proc, tail)
    deadline = time.monotonic() + timeout_s
    while not seen.wait(0.05):
        if ended.is_set() or time.monotonic() > deadline:
            server.stop()
            why = "exited" if ended.is_set() else f"did not print {ready!r} within {timeout_s} s"
            raise RuntimeError(f"{' '.join(argv)} {why}; its output:\n{server.output()}")
    return server


def start_redis(attempts: int = 3) -> tuple[Server, str]:
    """A throwaway redis-server (no persistence) on a free loopback port, and its URL."""
    binary = require_binary("redis-server", "`make test` installs it: apt-get install redis-server")
    error: RuntimeError | None = None
    for _ in range(attempts):  # a free port can be taken between free_port() and the bind
        port = free_port()
        argv = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ]
        try:
            server = start_server(argv, ready="Ready to accept connections")
        except RuntimeError as exc:
            error = exc
            continue
        return server, f"redis://127.0.0.1:{port}/0"
    assert error is not None
    raise error


class Mosquitto:
    """A mosquitto broker on a free loopback port with users, an ACL (a unit may publish only
    under ``ambulink/v1/units/<its id>/``; ``hub`` reads and writes every unit's topics) and
    persistence in ``folder``, so ``restart()`` on the same port keeps QoS 1 sessions."""

    HUB_USER = "hub"

    def __init__(self, folder: Path, units: Iterable[str], attempts: int = 3) -> None:
        self.binary = require_binary(
            "mosquitto", "`make test` installs it: apt-get install mosquitto"
        )
        passwd = require_binary("mosquitto_passwd", "it comes with mosquitto")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "data").mkdir(exist_ok=True)
        self.folder = folder
        self.passwords = {name: secrets.token_urlsafe(12) for name in (self.HUB_USER, *units)}
        password_file = folder / "passwd"
        password_file.touch(mode=0o600)
        for name, password in self.passwords.items():
            subprocess.run([passwd, "-b", str(password_file), name, password], check=True)
        (folder / "acl").write_text(
            f"user {self.HUB_USER}\ntopic readwrite ambulink/v1/units/#\n\n"
            "pattern write ambulink/v1/units/%u/#\n"
        )
        self.config = folder / "mosquitto.conf"
        error: RuntimeError | None = None
        for _ in range(attempts):  # a free port can be taken between free_port() and the bind
            self.port = free_port()
            lines = [
                f"listener {self.port} 127.0.0.1",
                "allow_anonymous false",
                f"password_file {password_file}",
                f"acl_file {folder / 'acl'}",
                "persistence true",
                f"persistence_location {folder / 'data'}/",
                "autosave_interval 1",
                "log_dest stderr",  # unbuffered: the ready line arrives at once
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_type information",
            ]
            if os.geteuid() == 0:
                lines.append("user root")  # else it drops to `mosquitto`, who cannot read folder
            self.config.write_text("\n".join(lines) + "\n")
            try:
                self.server = self._start()
            except RuntimeError as exc:
                error = exc
                continue
            return
        assert error is not None
        raise error

    def _start(self) -> Server:
        return start_server([self.binary, "-c", str(self.config)], ready=" running")

    def url(self, user: str) -> str:
        return f"mqtt://{user}:{self.passwords[user]}@127.0.0.1:{self.port}"

    def restart(self) -> None:
        """Stop (saving its persistence file) and start again on the same port."""
        self.server.stop()
        self.server = self._start()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(name="mosquitto_server")
def mosquitto_fixture(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker for one test, with users ``hub`` and ``amb-1`` .. ``amb-13`` (the demo fleet).
    Import ``mosquitto_fixture`` into a test module to use ``mosquitto_server``."""
    broker = Mosquitto(tmp_path / "mosquitto", [f"amb-{i}" for i in range(1, 14)])
    try:
        yield broker
    finally:
        broker.stop()
