import contextlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ambulink.cli import main


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("eval", "bench"):
        assert command in out


def test_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "qrs", "--data", "/nonexistent/records"])
    assert code == 2
    err = capsys.readouterr().err
    assert "ambulink eval: error:" in err and "/nonexistent/records" in err


def test_the_console_script_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ambulink.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("ambulink ")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--route", "52.09"], "expected LAT,LON"),
        (["--route", "95,5"], "is not a place"),
        (["--mqtt", "mqtt://amb-1:pw@127.0.0.1:1883"], "give --route too"),
        (["--detach", "MLII:60/300"], "expected LEAD:OFF-ON/EVERY"),
        (["--detach", "MLII:90-60/300"], "off_s < on_s"),
        (["--detach", "II:60-90/300"], "cannot detach lead 'II'"),
    ],
)
def test_client_route_options_refuse_bad_input(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMBULINK_TOKEN_SECRET", "x" * 40)
    try:
        code = main(["client", "ambulink/data/mitdb/100", "--unit", "amb-1", *argv])
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    assert code == 2
    assert says in capsys.readouterr().err


def test_a_taken_port_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        data_dir = tmp_path / "demo"
        data_dir.mkdir()
        (data_dir / "kept").write_text("a previous demo's data")
        assert main(["demo", "--port", str(port), "--data-dir", str(data_dir)]) == 2
        monkeypatch.setenv("AMBULINK_PORT", str(port))
        monkeypatch.setenv("AMBULINK_HOST", "127.0.0.1")
        monkeypatch.setenv("AMBULINK_DATA_DIR", str(tmp_path / "hub"))
        monkeypatch.setenv("AMBULINK_TOKEN_SECRET", "s" * 32)
        assert main(["hub"]) == 2
    demo_err, hub_err = capsys.readouterr().err.strip().splitlines()
    assert f"ambulink demo: error: cannot listen on 127.0.0.1:{port}" in demo_err
    assert "--port" in demo_err
    assert (data_dir / "kept").exists(), "nothing is deleted before the hub can start"
    assert f"ambulink hub: error: cannot listen on 127.0.0.1:{port}" in hub_err
    assert "AMBULINK_PORT" in hub_err


@pytest.mark.parametrize("sigint", ["default", "ignored"], ids=["terminal", "background-job"])
def test_ctrl_c_stops_the_demo_its_fleet_and_its_analysis_worker(
    tmp_path: Path, sigint: str
) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the hub, the simulated fleet in it
    # and the analysis worker. A background job ignores SIGINT; uvicorn still stops the server,
    # and the demo must then stop its fleet rather than wait for it.
    import os
    import signal

    from tests.servers import free_port

    def start_session() -> None:
        os.setsid()
        if sigint == "ignored":
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "ambulink.cli", "demo", "--port", str(port), "--data-dir",
         str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=start_session,
        env={**os.environ, "AMBULINK_TOKEN_SECRET": "d" * 40},
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:  # the fleet is listed once every tablet has started
            lines.append(line)
            if "crew page amb-5" in line:
                break
        assert any("hub on" in line for line in lines), "".join(lines)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # serving
        # the first ECG block starts the analysis worker: a fork server and its child, which
        # ignore SIGINT (the hub stops them)
        for _ in range(300):  # at most 30 s
            if len(ignoring_sigint(descendants(demo.pid))) >= 2:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                demo.wait(timeout=0.1)
            assert demo.poll() is None, "the demo stopped by itself"
        assert len(ignoring_sigint(descendants(demo.pid))) >= 2, "no analysis worker started"
        os.killpg(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)  # bounded: a hang fails here
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == 0, rest
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest
    assert "worker process died" not in rest, rest


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (from /proc)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, ppid in parent.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def ignoring_sigint(pids: list[int]) -> list[int]:
    """Those of ``pids`` whose SIGINT disposition is "ignore" (SigIgn in /proc/PID/status)."""
    out = []
    for pid in pids:
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            ignored = int(status.split("SigIgn:")[1].split()[0], 16)
            if ignored & (1 << (2 - 1)):  # SIGINT is signal 2
                out.append(pid)
    return out
