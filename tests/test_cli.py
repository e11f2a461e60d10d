import subprocess
import sys

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
