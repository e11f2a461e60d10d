"""Run a function of a loadtest module against the ``ambulink`` of another checkout.

A benchmark that compares a change with the code before it imports the same measuring code in a
child process whose ``sys.path`` starts with the other checkout (e.g. ``git worktree add
/tmp/before HEAD~1``); the measuring code comes from this checkout, so the peer may predate it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

_CODE = (
    "import importlib.util, json, sys; sys.path.insert(0, sys.argv[1]); "
    "spec = importlib.util.spec_from_file_location('measuring', sys.argv[2]); "
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
    "import ambulink; assert ambulink.__file__.startswith(sys.argv[1]), ambulink.__file__; "
    "print(json.dumps(getattr(module, sys.argv[3])(*json.loads(sys.argv[4]))))"
)


def run_in_checkout(
    tree: Path, module_file: str, function: str, *args: Any, timeout_s: float = 900.0
) -> Any:
    """``function(*args)`` of ``module_file``, run with ``tree``'s ambulink; its JSON result."""
    done = subprocess.run(
        [sys.executable, "-c", _CODE, str(tree), module_file, function, json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout_s,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
