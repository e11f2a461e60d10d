"""CPU cost of the streaming ``Analyzer`` (and of batch ``beats.classify``), as a multiple of
real time, for two checkouts.

``python -m loadtest.analyzer_cost [--peer DIR] [--repeat 3]``

Feeds bundled records in 40 ms frames (as the ambulance client sends them) to a fresh
``Analyzer`` and divides stream time by ``time.process_time``, best of ``--repeat`` runs:
mitdb 201 (2 leads, 30 min) and PTB-XL 00003 (12 leads, 10 s tiled to 180 s). With ``--peer``
(another checkout of ambulink, e.g. ``git worktree add /tmp/before HEAD~1``) the same is
measured there in a child process, alternately, so a change is shown as a ratio against the
code before it on the same machine in the same run. Batch ``beats.classify`` is timed on lead
0 of four bundled MIT-BIH records the same way.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import wfdb

ROOT = Path(__file__).resolve().parents[1]
FRAME_S = 0.04
CASES = (("mitdb/201", 1), ("ptbxl/00003_hr", 18))  # (bundled record, times tiled)
CLASSIFY = ("mitdb/100", "mitdb/119", "mitdb/201", "mitdb/207")  # batch classify, lead 0


def measure(repeat: int) -> dict[str, float]:
    """Real-time multiple per case with the ``ambulink`` found on ``sys.path``."""
    from ambulink.data import record_path
    from ambulink.signal.analyzer import Analyzer
    from ambulink.signal.beats import classify

    out: dict[str, float] = {}
    for name, tiles in CASES:
        record = wfdb.rdrecord(record_path(name))
        signals = np.tile(np.nan_to_num(record.p_signal), (tiles, 1))
        fs, frame = float(record.fs), max(int(FRAME_S * record.fs), 1)
        best = float("inf")
        for _ in range(repeat):
            analyzer = Analyzer(fs, list(record.sig_name))
            start = time.process_time()
            for i in range(0, len(signals), frame):
                analyzer.feed(signals[i : i + frame])
            analyzer.flush()
            best = min(best, time.process_time() - start)
        out[f"{name} ({record.n_sig} leads, {len(signals) / fs:.0f} s)"] = len(signals) / fs / best
    for name in CLASSIFY:
        record = wfdb.rdrecord(record_path(name))
        lead, fs = record.p_signal[:, 0], float(record.fs)
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            classify(lead, fs)
            best = min(best, time.process_time() - start)
        out[f"beats.classify {name} lead 0"] = len(lead) / fs / best
    return out


def _in_checkout(tree: Path, repeat: int) -> dict[str, float]:
    # imported here: the child runs this file with the peer's packages first on sys.path
    from loadtest.checkout import run_in_checkout

    result: dict[str, float] = run_in_checkout(tree, __file__, "measure", repeat)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", type=Path, help="another ambulink checkout to compare with")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, best kept")
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --peer")
    args = parser.parse_args(argv)
    trees = [("this", ROOT)] + ([("peer", args.peer.resolve())] if args.peer else [])
    for round_ in range(1, args.rounds + 1):
        for label, tree in trees:
            for case, multiple in _in_checkout(tree, args.repeat).items():
                print(f"round {round_} {label:4} {case}: {multiple:.0f}x real time", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
