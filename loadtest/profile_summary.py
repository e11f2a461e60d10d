"""Summarise a py-spy ``--format raw --threads`` profile of the hub (``ingest --profile``).

``python -m loadtest.profile_summary /tmp/lt/hub-20.txt [--top 25]``

Per thread: samples on a Python stack vs waiting (epoll, an idle worker). For the event-loop
thread: the share of its non-waiting samples under each frame (inclusive), so that "aiortc SCTP"
or "run_in_executor" shows as one line. A thread "on a stack" may still be off-CPU (waiting for
the GIL, or for a core on a busy machine): compare with the per-thread CPU in the step's output.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

IDLE_LEAVES = ("EpollSelector.select", "_worker (concurrent/futures/thread.py:81)")


def _frame_key(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarise(path: Path, top: int) -> list[str]:
    per_thread: Counter[tuple[str, str]] = Counter()
    loop_inclusive: Counter[str] = Counter()
    loop_busy = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        idle = frames[-1].startswith(IDLE_LEAVES)
        per_thread[(thread, "waiting" if idle else "on a stack")] += count
        if thread == "MainThread" and not idle:
            loop_busy += count
            for key in {_frame_key(f) for f in frames[1:]}:
                loop_inclusive[key] += count
    lines = ["samples by thread:"]
    lines += [f"  {t} {state}: {n}" for (t, state), n in sorted(per_thread.items())]
    lines.append(f"event loop (MainThread), {loop_busy} samples not waiting, inclusive share:")
    skip = ("_run_module_as_main", "_run_code", "<module>", "main", "run", "Runner.run")
    shown = 0
    for key, n in loop_inclusive.most_common():
        if key.split(" (")[0] in skip or key.startswith(("BaseEventLoop.run_", "Handle._run")):
            continue
        lines.append(f"  {100 * n / loop_busy:5.1f} %  {key}")
        shown += 1
        if shown >= top:
            break
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print("\n".join(summarise(args.profile, args.top)))


if __name__ == "__main__":
    main()
