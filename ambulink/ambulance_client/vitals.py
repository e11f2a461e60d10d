"""SIMULATED vitals for replayed cases: the bundled ECG records carry no SpO2, NIBP, RR, EtCO2
or temperature, so the demo fleet makes them up.

Only the heart rate is real: ``heart_rate_track`` derives it from the record's own beats (our
QRS detector on lead 0). Everything else is a seeded, mean-reverting, bounded random walk
(Ornstein-Uhlenbeck on a 1 s grid, clipped to a plausible adult range): it looks like a patient
on a monitor and means nothing clinically. Every sample says ``simulated=True``; the UI must
show these values as simulated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import wfdb

from ambulink.errors import RecordNotFound
from ambulink.protocol.messages import Measurement
from ambulink.protocol.messages import Vitals as VitalsMessage
from ambulink.signal.qrs import detect
from ambulink.signal.validation import hold_invalid

HR_WINDOW_S = 10.0  # a monitor's averaging window for the displayed heart rate
NIBP_INTERVAL_S = 300.0  # automatic cuff cycle: every 5 min
STEP_S = 1.0  # random-walk grid
_NIBP_STEPS = round(NIBP_INTERVAL_S / STEP_S)


class Vitals(TypedDict):
    """One vitals reading at ``t_s`` (s since the case started). ``hr_bpm`` is ``None`` when
    the record shows no countable beats (e.g. VF); NIBP values are from the last cuff cycle
    at ``nibp_t_s``."""

    t_s: float
    hr_bpm: float | None
    spo2_pct: float
    nibp_sys_mmhg: float
    nibp_dia_mmhg: float
    nibp_mean_mmhg: float
    nibp_t_s: float
    rr_per_min: float
    etco2_mmhg: float
    temp_c: float
    simulated: bool


def heart_rate_track(path: str, *, loop: bool = True) -> Callable[[float], float | None]:
    """Heart rate (bpm) of a WFDB record at time ``t_s`` (s), from R peaks detected once on
    lead 0: 60 / median RR of the beats in the ``HR_WINDOW_S`` before ``t_s``. ``None`` when
    fewer than 2 beats fall in the window. With ``loop`` the record repeats (as ``RecordReplay``
    does), so any ``t_s >= 0`` has a rate; without it, times past the end give ``None``."""
    try:
        rec = wfdb.rdrecord(path, channels=[0])
    except FileNotFoundError as exc:
        raise RecordNotFound(f"no WFDB record at {path}: {exc}") from exc
    fs = float(rec.fs)
    lead_mv = hold_invalid(np.asarray(rec.p_signal, dtype=np.float64))[0][:, 0]
    duration_s = len(lead_mv) / fs
    beats_s = detect(lead_mv, fs).astype(np.float64) / fs

    def rate_at(t_s: float) -> float | None:
        if t_s < 0 or (not loop and t_s > duration_s):
            return None
        n_loops = math.floor(t_s / duration_s) if loop else 0
        local_s = t_s - n_loops * duration_s
        lo = int(np.searchsorted(beats_s, local_s - HR_WINDOW_S, side="left"))
        hi = int(np.searchsorted(beats_s, local_s, side="right"))
        window = beats_s[lo:hi]
        if n_loops > 0 and local_s < HR_WINDOW_S:
            # The window reaches back across the loop seam into the end of the previous pass.
            tail = beats_s[beats_s >= duration_s + local_s - HR_WINDOW_S] - duration_s
            window = np.concatenate([tail, window])
        if len(window) < 2:
            return None
        return 60.0 / float(np.median(np.diff(window)))

    return rate_at


@dataclass
class _Walk:
    """A bounded Ornstein-Uhlenbeck walk: mean ``mu``, reversion rate ``theta`` (/s), noise
    ``sigma`` (units/sqrt(s)), clipped to ``[lo, hi]``."""

    mu: float
    theta: float
    sigma: float
    lo: float
    hi: float
    x: float = math.nan

    def start(self, rng: np.random.Generator) -> None:
        self.x = float(np.clip(rng.normal(self.mu, self.sigma), self.lo, self.hi))

    def step(self, rng: np.random.Generator, dt_s: float) -> None:
        drift = self.theta * (self.mu - self.x) * dt_s
        noise = self.sigma * math.sqrt(dt_s) * float(rng.standard_normal())
        self.x = float(np.clip(self.x + drift + noise, self.lo, self.hi))


class VitalsSimulator:
    """SIMULATED vitals at increasing times ``t_s``; same ``seed`` → same values at the same
    times, however often it is asked (the walks advance on a fixed ``STEP_S`` grid).

    ``record_hr_bpm`` gives the heart rate (bpm) at ``t_s``, usually ``heart_rate_track(path)``
    of the replayed record; ``None`` simulates the heart rate too. Ranges (adult, prehospital):
    HR 40-150 bpm, SpO2 88-100 %, NIBP systolic 90-180, diastolic 50-110 mmHg (at least 20
    below systolic), mean = dia + (sys - dia) / 3, RR 8-30 /min, EtCO2 30-45 mmHg, temperature
    35.5-38.5 °C.
    """

    def __init__(self, record_hr_bpm: Callable[[float], float | None] | None, *, seed: int) -> None:
        self._record_hr = record_hr_bpm
        self._rng = np.random.default_rng(seed)
        self._hr = _Walk(mu=80.0, theta=0.01, sigma=1.0, lo=40.0, hi=150.0)
        self._spo2 = _Walk(mu=96.0, theta=0.02, sigma=0.3, lo=88.0, hi=100.0)
        self._sys = _Walk(mu=130.0, theta=0.005, sigma=0.6, lo=90.0, hi=180.0)
        self._dia = _Walk(mu=80.0, theta=0.005, sigma=0.4, lo=50.0, hi=110.0)
        self._rr = _Walk(mu=16.0, theta=0.02, sigma=0.3, lo=8.0, hi=30.0)
        self._etco2 = _Walk(mu=38.0, theta=0.02, sigma=0.3, lo=30.0, hi=45.0)
        self._temp = _Walk(mu=36.8, theta=0.001, sigma=0.005, lo=35.5, hi=38.5)
        self._walks = (
            self._hr,
            self._spo2,
            self._sys,
            self._dia,
            self._rr,
            self._etco2,
            self._temp,
        )
        for walk in self._walks:
            walk.start(self._rng)
        self._step = 0  # the walks hold their values at t = _step * STEP_S
        self._nibp = self._measure_nibp(0.0)

    def _measure_nibp(self, t_s: float) -> tuple[float, float, float, float]:
        sys = round(self._sys.x)
        dia = round(min(self._dia.x, sys - 20))
        return float(sys), float(dia), float(round(dia + (sys - dia) / 3)), t_s

    def sample(self, t_s: float) -> Vitals:
        """Vitals at ``t_s`` (s since the case started); ``t_s`` must not go backwards by more
        than one grid step."""
        target = math.floor(t_s / STEP_S)
        if target < self._step:
            raise ValueError(
                f"vitals are simulated forwards: t_s={t_s} is before "
                f"{self._step * STEP_S} s, already simulated"
            )
        while self._step < target:
            self._step += 1
            for walk in self._walks:
                walk.step(self._rng, STEP_S)
            if self._step % _NIBP_STEPS == 0:
                self._nibp = self._measure_nibp(self._step * STEP_S)
        hr = self._record_hr(t_s) if self._record_hr is not None else round(self._hr.x)
        sys, dia, mean, nibp_t_s = self._nibp
        return Vitals(
            t_s=t_s,
            hr_bpm=None if hr is None else float(round(hr)),
            spo2_pct=float(round(self._spo2.x)),
            nibp_sys_mmhg=sys,
            nibp_dia_mmhg=dia,
            nibp_mean_mmhg=mean,
            nibp_t_s=nibp_t_s,
            rr_per_min=float(round(self._rr.x)),
            etco2_mmhg=float(round(self._etco2.x)),
            temp_c=round(self._temp.x, 1),
            simulated=True,
        )


def vitals_message(sample: Mapping[str, object], case_id: str, now: float) -> VitalsMessage:
    """A ``VitalsSimulator.sample`` as the protocol's ``vitals`` message, measured at ``now``."""

    def m(key: str, unit: str) -> Measurement | None:
        value = sample.get(key)
        if not isinstance(value, int | float):
            return None
        return Measurement(value=float(value), unit=unit, at=now)

    return VitalsMessage(
        case_id=case_id,
        at=now,
        hr=m("hr_bpm", "bpm"),
        spo2=m("spo2_pct", "%"),
        nibp_sys=m("nibp_sys_mmhg", "mmHg"),
        nibp_dia=m("nibp_dia_mmhg", "mmHg"),
        nibp_mean=m("nibp_mean_mmhg", "mmHg"),
        rr=m("rr_per_min", "/min"),
        etco2=m("etco2_mmhg", "mmHg"),
        temp=m("temp_c", "°C"),
    )
