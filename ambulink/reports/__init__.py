"""Rendered ECG evidence: 12-lead report pages and single-lead alarm strips as PNG.

Pure functions of samples (mV) and sampling rate (Hz); the only I/O is ``command.py``
(``ambulink ecg-report``), which reads a WFDB record and writes the PNG.
"""

from __future__ import annotations

from ambulink.reports.ecg_image import (
    EcgImage,
    Marker,
    PlacedMarker,
    Trace,
    render_12lead,
    render_strip,
)

__all__ = ["EcgImage", "Marker", "PlacedMarker", "Trace", "render_12lead", "render_strip"]
