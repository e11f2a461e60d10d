"""What the VF detector and the beat-based VT monitor see in annotated VT, VFL and VF.

``python -m loadtest.vf_features --data DIR [--data DIR ...] [--records NAMES] [--json OUT]``

For every annotated ``(VT``, ``(VFL``, ``(VF``/``(VFIB`` span of at least ``--min-s`` seconds
(default 6, the issue's long episodes) in the folders' WFDB records:

- per lead, the ``VfDetector`` window features over the span (windows wholly inside it): the
  share judged VF-like, and the medians of the dominant frequency, slope ratio, Kuo-Dillman
  leakage and harmonic score (``ambulink.signal.vf`` explains each);
- the share of the span covered by VT and by VF episodes of the one-lead ``Analyzer`` (first
  lead) before ``detect_episodes`` drops VT lying wholly inside VF.

Then, per annotated label, the 10th/50th/90th percentiles of each feature over all its windows.
It answers one question with numbers: can the waveform tell a fast VT from flutter? A
diagnostic of the detector, not a benchmark against a peer; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ambulink.evaluation.records import EcgRecord, list_records, read_record
from ambulink.signal.analyzer import analyze_record
from ambulink.signal.events import EpisodeEnd
from ambulink.signal.vf import VfDetector

LABELS = {"(VT": "VT", "(VFL": "VFL", "(VF": "VF", "(VFIB": "VF"}
FEATURES = ("dominant_hz", "slope_ratio", "leakage", "harmonic")


@dataclass
class Span:
    record: str
    label: str
    start_s: float
    seconds: float
    lead: int
    windows: int
    vf_like_pct: float
    dominant_hz: float
    slope_ratio: float
    leakage: float
    harmonic: float
    vt_cover_pct: float
    vf_cover_pct: float


def annotated_spans(record: EcgRecord, min_s: float) -> list[tuple[str, int, int]]:
    """(label, start, end) of the record's VT/VFL/VF rhythm spans of at least ``min_s``."""
    notes = [
        (int(s), a.strip("\x00"))
        for s, a in zip(record.annotations.sample, record.annotations.aux_note, strict=True)
        if a.strip("\x00").startswith("(")
    ]
    spans = []
    for i, (start, note) in enumerate(notes):
        end = notes[i + 1][0] if i + 1 < len(notes) else record.n_samples
        if note in LABELS and (end - start) >= min_s * record.fs:
            spans.append((LABELS[note], start, end))
    return spans


def _cover(episodes: list[tuple[int, int]], start: int, end: int) -> float:
    covered = sum(max(0, min(end, b) - max(start, a)) for a, b in episodes)
    return 100.0 * covered / (end - start)


def record_spans(
    record: EcgRecord, min_s: float, pooled: dict[str, dict[str, list[float]]]
) -> list[Span]:
    spans = annotated_spans(record, min_s)
    if not spans:
        return []
    events = analyze_record(record.lead(0)[:, None], record.fs)
    episodes = {
        label: [(e.start, e.end) for e in events if isinstance(e, EpisodeEnd) and e.label == label]
        for label in ("VT", "VF")
    }
    rows = []
    for lead in range(record.signals_mv.shape[1]):
        detector = VfDetector(record.fs)
        _, windows = detector.feed_windows(record.lead(lead))
        if windows is None:
            continue
        vf_like = detector.vf_like(windows)
        starts = windows.end_sample - detector.window_samples
        for label, start, end in spans:
            inside = (starts >= start) & (windows.end_sample <= end)
            values = {name: getattr(windows, name)[inside] for name in FEATURES}
            for name, v in values.items():
                pooled.setdefault(label, {}).setdefault(name, []).extend(v[np.isfinite(v)])

            def median(v: np.ndarray) -> float:
                finite = v[np.isfinite(v)]
                return round(float(np.median(finite)), 2) if finite.size else float("nan")

            rows.append(
                Span(
                    record=record.name,
                    label=label,
                    start_s=round(start / record.fs, 1),
                    seconds=round((end - start) / record.fs, 1),
                    lead=lead,
                    windows=int(inside.sum()),
                    vf_like_pct=round(100.0 * float(vf_like[inside].mean()), 1)
                    if inside.any()
                    else 0.0,
                    dominant_hz=median(values["dominant_hz"]),
                    slope_ratio=median(values["slope_ratio"]),
                    leakage=median(values["leakage"]),
                    harmonic=median(values["harmonic"]),
                    vt_cover_pct=round(_cover(episodes["VT"], start, end), 1),
                    vf_cover_pct=round(_cover(episodes["VF"], start, end), 1),
                )
            )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.vf_features",
        description="VF detector features and VT/VF episode cover inside annotated VT, VFL "
        "and VF spans of WFDB records (see the module docstring).",
    )
    parser.add_argument("--data", action="append", required=True, type=Path, metavar="DIR")
    parser.add_argument("--records", nargs="+", metavar="NAMES", help="only these records")
    parser.add_argument("--min-s", type=float, default=6.0, help="shortest span (default 6 s)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the rows as JSON")
    args = parser.parse_args(argv)

    rows: list[Span] = []
    pooled: dict[str, dict[str, list[float]]] = {}
    for folder in args.data:
        names = list_records(folder)
        if args.records:
            names = [n for n in names if n in set(args.records)]
        for i, name in enumerate(names, 1):
            print(f"[{i}/{len(names)}] {folder.name}/{name} ...", flush=True)
            rows.extend(record_spans(read_record(folder, name), args.min_s, pooled))

    print(
        f"\n{'record':8} {'label':5} {'start s':>8} {'dur s':>6} {'lead':>4} {'VF-like %':>9} "
        f"{'dom Hz':>6} {'slope':>6} {'leak':>5} {'harm':>6} {'VT cov %':>8} {'VF cov %':>8}"
    )
    for r in rows:
        print(
            f"{r.record:8} {r.label:5} {r.start_s:8.0f} {r.seconds:6.0f} {r.lead:4} "
            f"{r.vf_like_pct:9.1f} {r.dominant_hz:6.2f} {r.slope_ratio:6.2f} {r.leakage:5.2f} "
            f"{r.harmonic:6.2f} {r.vt_cover_pct:8.1f} {r.vf_cover_pct:8.1f}"
        )
    print("\nper label, every lead's windows pooled: 10th / 50th / 90th percentile")
    for label, features in sorted(pooled.items()):
        cells = []
        for name in FEATURES:
            v = np.asarray(features.get(name, []))
            p = np.percentile(v, [10, 50, 90]) if v.size else [float("nan")] * 3
            cells.append(f"{name} {p[0]:.2f}/{p[1]:.2f}/{p[2]:.2f}")
        n = len(features.get("slope_ratio", []))
        print(f"{label:4} ({n} windows): " + "; ".join(cells))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
