"""Interference added to real records in tests: what an ambulance ECG picks up."""

import numpy as np
from scipy.signal import butter, sosfilt


def motion_artefact(n: int, fs: float, rms_mv: float, seed: int) -> np.ndarray:
    """``n`` samples of electrode motion artefact: seeded Gaussian noise band-passed to
    1-10 Hz (the band of VF), scaled to ``rms_mv``."""
    sos = butter(2, (1.0, 10.0), btype="bandpass", fs=fs, output="sos")
    artefact = sosfilt(sos, np.random.default_rng(seed).normal(0.0, 1.0, n))
    return np.asarray(artefact * (rms_mv / artefact.std()))
