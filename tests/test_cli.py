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
