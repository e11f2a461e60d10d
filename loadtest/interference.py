"""False alarms and lost findings under the interference an ambulance ECG carries, for two
checkouts.

``python -m loadtest.interference st --data DIR [--data DIR ...] [--peer DIR]``
``python -m loadtest.interference rhythm --data DIR [--peer DIR]``
``python -m loadtest.interference beats --data DIR [--peer DIR]``

- ``st``: the first 10 s of every 12-lead record that ``ambulink eval st`` finds in the
  folders (PTB-XL, LUDB, PTB), analysed by ``st.analyze`` clean and with one interference
  added: 50 Hz hum (0.2 mV), respiratory wander (0.3 Hz, 0.25-0.75 mV per lead), 1-10 Hz motion
  artefact (0.3 mV RMS) or 20-150 Hz EMG (0.3 mV RMS) on one lead, or one lead flat; and
  decimated to 250 Hz, as many monitors export, and to 100 Hz, as PTB-XL's ``records100``
  (``resample_poly``, which low-passes first). Per reference group: records flagged STEMI
  and records not evaluable.
- ``rhythm``: every WFDB record with annotations in the folder (MIT-BIH) through the two-lead
  streaming ``Analyzer``: clean, with 10 s bursts of motion artefact or EMG on the first lead
  every 60 s, with the first lead detached (flat) over three 60 s spans, and with 0.2 mV of
  50 Hz hum on both leads. Per condition:
  the VF, VT, asystole and pause episodes started.
- ``beats``: the first lead of every MIT-BIH record through ``beats.classify``: clean, with
  0.2 mV of 50 or 60 Hz hum, or with the motion and EMG bursts above; gross V Se and +P as
  ``ambulink eval beats`` scores them (EC57, from 300 s, mostly paced records left out).

The interference is seeded per record, so both checkouts see the same samples. With ``--peer``
(another checkout, e.g. ``git worktree add /tmp/before HEAD~1``) the same sweep runs there in
a child process and both columns are printed. Nothing here asserts a number.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, resample_poly, sosfilt

FloatArray = NDArray[np.float64]
Fault = Callable[[FloatArray, float, list[str], np.random.Generator], FloatArray]
Disturbance = Callable[[FloatArray, float, np.random.Generator], FloatArray]
RHYTHM_LABELS = ("VF", "VT", "ASYSTOLE", "PAUSE", "AF")


def _noise(
    n: int, fs: float, band: tuple[float, float], rms: float, rng: np.random.Generator
) -> FloatArray:
    sos = butter(2, band, btype="bandpass", fs=fs, output="sos")
    noise = np.asarray(sosfilt(sos, rng.normal(0.0, 1.0, n)), dtype=np.float64)
    return noise * (rms / float(noise.std()))


def _one_lead(band: tuple[float, float], rms: float) -> Fault:
    def add(x: FloatArray, fs: float, leads: list[str], rng: np.random.Generator) -> FloatArray:
        y = x.copy()
        y[:, rng.integers(len(leads))] += _noise(len(x), fs, band, rms, rng)
        return y

    return add


def _hum_at(mains_hz: float) -> Disturbance:
    """0.2 mV of hum at ``mains_hz``, the same on every lead (x is 1-D or leads in columns)."""

    def add(x: FloatArray, fs: float, rng: np.random.Generator) -> FloatArray:
        t = np.arange(len(x)) / fs
        hum = 0.2 * np.sin(2 * np.pi * mains_hz * t + rng.uniform(0, 2 * np.pi))
        return x + hum.reshape(-1, *([1] * (x.ndim - 1)))

    return add


def _bursts_of(band: tuple[float, float], rms: float) -> Disturbance:
    """10 s bursts of band-passed noise once a minute on one lead (1-D ``x``)."""

    def add(x: FloatArray, fs: float, rng: np.random.Generator) -> FloatArray:
        top = min(band[1], 0.45 * fs)
        return x + _bursts(len(x), fs) * _noise(len(x), fs, (band[0], top), rms, rng)

    return add


BEAT_FAULTS: dict[str, Disturbance] = {
    "clean": lambda x, fs, rng: x,
    "50 Hz hum 0.2 mV": _hum_at(50.0),
    "60 Hz hum 0.2 mV": _hum_at(60.0),
    "motion bursts": _bursts_of((1.0, 10.0), 0.5),
    "EMG bursts": _bursts_of((20.0, 150.0), 0.3),
}


def _wander(x: FloatArray, fs: float, leads: list[str], rng: np.random.Generator) -> FloatArray:
    t = np.arange(len(x)) / fs
    drift = 0.5 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi))
    return x + drift[:, None] * rng.uniform(0.5, 1.5, len(leads))


def _flat(name: str) -> Fault:
    def add(x: FloatArray, fs: float, leads: list[str], rng: np.random.Generator) -> FloatArray:
        y = x.copy()
        if name in leads:
            y[:, leads.index(name)] = 0.3
        return y

    return add


ST_FAULTS: dict[str, Fault] = {
    "clean": lambda x, fs, leads, rng: x,
    "50 Hz hum 0.2 mV": lambda x, fs, leads, rng: _hum_at(50.0)(x, fs, rng),
    "wander 0.3 Hz": _wander,
    "motion 1-10 Hz one lead": _one_lead((1.0, 10.0), 0.3),
    "EMG 20-150 Hz one lead": _one_lead((20.0, 150.0), 0.3),
    "V2 flat": _flat("V2"),
}
ST_RATES = {"decimated to 250 Hz": 250.0, "decimated to 100 Hz": 100.0}  # from 500, 1000 Hz


def st_sweep(folders: list[str]) -> dict[str, dict[str, list[int]]]:
    """{fault: {group: [records, flagged STEMI, not evaluable]}} with the ambulink on sys.path."""
    from ambulink.evaluation.st_records import list_cases, read_signals
    from ambulink.signal.st import analyze

    out: dict[str, dict[str, list[int]]] = {name: {} for name in (*ST_FAULTS, *ST_RATES)}
    for folder in folders:
        for case in list_cases(Path(folder)):
            record = read_signals(case, seconds=10.0)
            ref = case.reference
            inputs: dict[str, tuple[FloatArray, float]] = {}
            for name, fault in ST_FAULTS.items():
                rng = np.random.default_rng(zlib.crc32(f"{case.label} {name}".encode()))
                inputs[name] = fault(record.signals_mv, record.fs, record.leads, rng), record.fs
            for name, rate in ST_RATES.items():
                factor = record.fs / rate
                if factor > 1 and factor.is_integer():
                    x = resample_poly(record.signals_mv, 1, int(factor), axis=0)
                    inputs[name] = np.asarray(x, dtype=np.float64), rate
            for name, (x, fs) in inputs.items():
                result = analyze(x, fs, record.leads, ref.sex, ref.age)
                row = out[name].setdefault(ref.group.value, [0, 0, 0])
                row[0] += 1
                row[1] += int(result.stemi)
                row[2] += int(not result.evaluable)
    return out


def _bursts(n: int, fs: float) -> FloatArray:
    """1 inside 10 s bursts, one every 60 s from 30 s; 0 elsewhere."""
    mask = np.zeros(n)
    for start in range(int(30 * fs), n - int(10 * fs), int(60 * fs)):
        mask[start : start + int(10 * fs)] = 1.0
    return mask


def _rhythm_faults(x: FloatArray, fs: float, rng: np.random.Generator) -> dict[str, FloatArray]:
    motion, emg, detached = x.copy(), x.copy(), x.copy()
    motion[:, 0] = BEAT_FAULTS["motion bursts"](x[:, 0], fs, rng)
    emg[:, 0] = BEAT_FAULTS["EMG bursts"](x[:, 0], fs, rng)
    for start_s in (300, 900, 1500):
        detached[int(start_s * fs) : int((start_s + 60) * fs), 0] = 0.4
    hum = BEAT_FAULTS["50 Hz hum 0.2 mV"](x, fs, rng)  # drawn last: the others as before
    return {
        "clean": x,
        "motion bursts": motion,
        "EMG bursts": emg,
        "first lead detached": detached,
        "50 Hz hum 0.2 mV": hum,
    }


def beat_sweep(folder: str) -> dict[str, list[float]]:
    """{condition: [V Se %, V +P %]} over the folder's records, first lead."""
    from ambulink.evaluation.evaluate import EvalSettings, evaluate_beats
    from ambulink.signal.beats import classify

    out: dict[str, list[float]] = {}
    for name, fault in BEAT_FAULTS.items():

        def run(record: Any, lead: int | None, fault: Any = fault, name: str = name) -> Any:
            rng = np.random.default_rng(zlib.crc32(f"{record.name} {name}".encode()))
            return classify(fault(record.lead(lead), record.fs, rng), record.fs)

        matrix = evaluate_beats(EvalSettings(Path(folder)), run).gross_matrix
        out[name] = [100.0 * (matrix.v_se or 0.0), 100.0 * (matrix.v_ppv or 0.0)]
    return out


def rhythm_sweep(folder: str) -> dict[str, dict[str, int]]:
    """{condition: {label: episodes started}} over the folder's records."""
    import wfdb

    from ambulink.signal.analyzer import Analyzer
    from ambulink.signal.events import EpisodeStart

    out: dict[str, dict[str, int]] = {}
    for header in sorted(Path(folder).glob("*.hea")):
        if not header.with_suffix(".atr").exists():
            continue
        record = wfdb.rdrecord(str(header.with_suffix("")))
        if record.n_sig < 2:
            continue
        x = np.nan_to_num(np.asarray(record.p_signal, dtype=np.float64))
        rng = np.random.default_rng(zlib.crc32(header.stem.encode()))
        for name, signals in _rhythm_faults(x, float(record.fs), rng).items():
            analyzer = Analyzer(float(record.fs), list(record.sig_name))
            events = analyzer.feed(signals) + analyzer.flush()
            counts = out.setdefault(name, dict.fromkeys(RHYTHM_LABELS, 0))
            for event in events:
                if isinstance(event, EpisodeStart) and event.label in counts:
                    counts[event.label] += 1
    return out


def _on_peer(peer: Path | None, function: str, *args: object) -> Any:
    """The same sweep with ``peer``'s ambulink (None without a peer)."""
    if peer is None:
        return None
    from loadtest.checkout import run_in_checkout

    return run_in_checkout(peer.resolve(), __file__, function, *args, timeout_s=3600.0)


def _print_st(this: dict[str, dict[str, list[int]]], peer: Any) -> None:
    print("interference             group            records  STEMI       not evaluable")
    for fault in this:
        for group, (n, flagged, unusable) in sorted(this[fault].items()):
            other = (peer or {}).get(fault, {}).get(group)
            stemi = f"{flagged}" + (f" / {other[1]}" if other else "")
            bad = f"{unusable}" + (f" / {other[2]}" if other else "")
            print(f"{fault:24} {group:16} {n:7}  {stemi:11} {bad}")


def _print_rhythm(this: dict[str, dict[str, int]], peer: Any) -> None:
    print(f"{'condition':21} " + "  ".join(f"{label:>10}" for label in RHYTHM_LABELS))
    for condition, counts in this.items():
        other = (peer or {}).get(condition)
        cells = [f"{counts[k]}" + (f" / {other[k]}" if other else "") for k in RHYTHM_LABELS]
        print(f"{condition:21} " + "  ".join(f"{cell:>10}" for cell in cells))


def _print_beats(this: dict[str, list[float]], peer: Any) -> None:
    print(f"{'condition':18} {'V Se %':>15} {'V +P %':>15}")
    for condition, values in this.items():
        other = (peer or {}).get(condition)
        cells = [
            f"{value:.2f}" + (f" / {other[i]:.2f}" if other else "")
            for i, value in enumerate(values)
        ]
        print(f"{condition:18} {cells[0]:>15} {cells[1]:>15}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Counts read 'this / peer' with --peer. Example: python -m loadtest.interference "
        "st --data ../shared/ecg/ptbxl --data ../shared/ecg/ludb --peer /tmp/before",
    )
    parser.add_argument(
        "sweep", choices=("st", "rhythm", "beats"), help="which analysis to disturb"
    )
    parser.add_argument("--data", action="append", required=True, help="record folder")
    parser.add_argument("--peer", type=Path, help="another ambulink checkout to compare with")
    args = parser.parse_args(argv)
    if args.sweep == "st":
        _print_st(st_sweep(args.data), _on_peer(args.peer, "st_sweep", args.data))
    else:
        if len(args.data) != 1:
            parser.error(f"{args.sweep} takes one --data folder")
        folder = args.data[0]
        if args.sweep == "rhythm":
            _print_rhythm(rhythm_sweep(folder), _on_peer(args.peer, "rhythm_sweep", folder))
        else:
            _print_beats(beat_sweep(folder), _on_peer(args.peer, "beat_sweep", folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
