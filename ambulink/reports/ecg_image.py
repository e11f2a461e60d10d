"""12-lead report pages and single-lead strips as PNG, at 25 mm/s and 10 mm/mV on a red grid.

Each trace is its lead's samples (mV) with the lead's median over the report window removed
(no filtering), drawn about its row's centre line and clipped to the row. Every drawn trace is
returned as a :class:`Trace` (input sample range and pixel polyline) so that callers and tests
can check the picture is made from the right samples.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from ambulink.errors import SignalError
from ambulink.reports.leads import LAYOUT_COLUMNS, RHYTHM_LEAD, canonical_lead, match_leads
from ambulink.reports.paper import (
    CLIP_MARK,
    EVENT_MARK,
    GAIN_MM_PER_MV,
    PAPER,
    ROW_MM,
    SPEED_MM_PER_S,
    TRACE,
    Paper,
    Pulse,
    draw_text,
)
from ambulink.signal.validation import check_fs, to_millivolts

REPORT_S = 10.0  # window of a 12-lead page
CELL_S = 2.5  # each of the 3x4 cells
MIN_PX_PER_MM = 2.0
MAX_PX_PER_MM = 20.0
MAX_STRIP_S = 60.0
RHYTHM = "rhythm"  # key of the full-width strip in EcgImage.traces


@dataclass(frozen=True)
class Marker:
    """A vertical mark on the rhythm strip at input sample ``sample`` (e.g. "J", "onset")."""

    sample: int
    label: str


@dataclass(frozen=True)
class PlacedMarker:
    """A :class:`Marker` that fell inside the window, drawn at ``x_px``."""

    sample: int
    label: str
    x_px: float


@dataclass(frozen=True, eq=False)
class Trace:
    """One drawn trace: input samples ``[first, last)`` of column ``channel``, one point each.

    ``x``/``y`` are the polyline in px; y is clipped to the row band where ``clipped`` is True.
    Unclipped points satisfy ``y = centre_y_px - (sample - baseline_mv) * 10 mm/mV * px_per_mm``.
    """

    lead: str
    channel: int
    row: int
    column: int
    first: int
    last: int
    baseline_mv: float
    centre_y_px: float
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    clipped: NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class EcgImage:
    """A rendered page: PNG bytes, its size (px), scale, and what was drawn where."""

    png: bytes
    width_px: int
    height_px: int
    px_per_mm: float
    fs: float
    start: int
    traces: dict[str, Trace]  # 12-lead cells by standard lead name, plus "rhythm"
    absent: tuple[str, ...]  # standard leads the input lacks, drawn as "(absent)"
    calibration: tuple[Pulse, ...]  # one per row
    markers: tuple[PlacedMarker, ...]

    @property
    def clipped_leads(self) -> tuple[str, ...]:
        """Keys of traces that left their row band somewhere."""
        return tuple(key for key, trace in self.traces.items() if trace.clipped.any())


def _check_px_per_mm(px_per_mm: Any) -> float:
    try:
        value = float(px_per_mm)
    except (TypeError, ValueError) as exc:
        raise SignalError(f"px_per_mm must be a number, got {px_per_mm!r}") from exc
    if not math.isfinite(value) or not MIN_PX_PER_MM <= value <= MAX_PX_PER_MM:
        raise SignalError(
            f"px_per_mm must be {MIN_PX_PER_MM:g}-{MAX_PX_PER_MM:g}, got {px_per_mm!r}"
        )
    return value


def _check_start(start: Any, n_samples: int) -> int:
    if isinstance(start, bool) or not isinstance(start, int | np.integer):
        raise SignalError(f"start must be a sample index (int), got {start!r}")
    if not 0 <= start < n_samples:
        raise SignalError(f"start must be a sample index in 0-{n_samples - 1}, got {start}")
    return int(start)


def _check_markers(markers: Sequence[Marker]) -> tuple[Marker, ...]:
    for marker in markers:
        if not isinstance(marker, Marker):
            raise SignalError(f"markers must be Marker(sample, label), got {marker!r}")
        if isinstance(marker.sample, bool) or not isinstance(marker.sample, int | np.integer):
            raise SignalError(f"Marker sample must be an int index, got {marker.sample!r}")
    return tuple(markers)


class _Canvas:
    """The page being drawn, and the records of what was drawn."""

    def __init__(self, paper: Paper, fs_hz: float, start: int) -> None:
        self.paper = paper
        self.fs_hz = fs_hz
        self.start = start
        self.image = Image.new("RGB", (paper.width_px, paper.height_px), PAPER)
        self.draw = ImageDraw.Draw(self.image)
        paper.draw_grid(self.draw)
        self.pulses = tuple(paper.draw_pulse(self.draw, row) for row in range(paper.n_rows))
        self.traces: dict[str, Trace] = {}

    def x_px(self, sample: int) -> float:
        """x (px) of input sample ``sample``: 25 mm/s from ``start`` at the trace origin."""
        dx = SPEED_MM_PER_S * self.paper.px_per_mm / self.fs_hz
        return self.paper.trace_left_px + (sample - self.start) * dx

    def label(self, row: int, column_s: float, text: str) -> None:
        """Lead label at the top left of the cell starting ``column_s`` (s) into the row."""
        x = self.paper.trace_left_px + self.paper.px(column_s * SPEED_MM_PER_S + 1.0)
        y = self.paper.row_band_px(row)[0] + self.paper.px(1.5)
        draw_text(self.draw, self.paper, (x, y), text, size_mm=4.0)

    def absent(self, row: int, column_s: float, width_s: float, lead: str) -> None:
        x = self.paper.trace_left_px + self.paper.px((column_s + width_s / 2) * SPEED_MM_PER_S)
        y = self.paper.row_centre_px(row)
        draw_text(self.draw, self.paper, (x, y), f"{lead} (absent)", anchor="mm")

    def separator(self, row: int, column_s: float) -> None:
        """Short tick where one cell ends and the next begins."""
        x = self.paper.trace_left_px + self.paper.px(column_s * SPEED_MM_PER_S)
        centre = self.paper.row_centre_px(row)
        half = self.paper.px(3.0)
        self.draw.line([(x, centre - half), (x, centre + half)], fill=TRACE, width=1)

    def trace(
        self,
        key: str,
        lead: str,
        samples_mv: NDArray[np.float64],
        channel: int,
        cell: tuple[int, int],
        span: tuple[int, int],
        baseline_mv: float,
    ) -> None:
        """Draw ``samples_mv[first:last]`` in ``cell`` (row, column) and record it as ``key``."""
        row, column = cell
        first, last = span
        paper = self.paper
        index = np.arange(first, last, dtype=np.float64)
        dx = SPEED_MM_PER_S * paper.px_per_mm / self.fs_hz
        x: NDArray[np.float64] = self.x_px(first) + (index - first) * dx
        centre = paper.row_centre_px(row)
        y = centre - (samples_mv[first:last] - baseline_mv) * (GAIN_MM_PER_MV * paper.px_per_mm)
        top, bottom = paper.row_band_px(row)
        clipped = (y < top) | (y > bottom)
        y = np.clip(y, top, bottom)
        width = paper.line_width_px(0.3)
        if len(index) == 1:
            self.draw.point([(float(x[0]), float(y[0]))], fill=TRACE)
        else:
            self.draw.line(np.column_stack((x, y)).ravel().tolist(), fill=TRACE, width=width)
        self._mark_clipping(x, y, clipped)
        self.traces[key] = Trace(
            lead, channel, row, column, first, last, baseline_mv, centre, x, y, clipped
        )

    def _mark_clipping(
        self, x: NDArray[np.float64], y: NDArray[np.float64], clipped: NDArray[np.bool_]
    ) -> None:
        """An orange bar (at least 2 mm long) on the band edge wherever the trace was clipped."""
        if not clipped.any():
            return
        edges = np.flatnonzero(np.diff(np.concatenate(([0], clipped.astype(np.int8), [0]))))
        width = self.paper.line_width_px(0.8)
        half = self.paper.px(1.0)
        for begin, end in zip(edges[::2], edges[1::2], strict=True):
            edge_y = float(y[begin])
            mid = (float(x[begin]) + float(x[end - 1])) / 2
            left = min(float(x[begin]), mid - half)
            right = max(float(x[end - 1]), mid + half)
            self.draw.line([(left, edge_y), (right, edge_y)], fill=CLIP_MARK, width=width)

    def markers(
        self, markers: Sequence[Marker], row: int, window: tuple[int, int]
    ) -> tuple[PlacedMarker, ...]:
        """Dashed vertical lines with labels on ``row`` for markers inside ``window``."""
        placed = []
        top, bottom = self.paper.row_band_px(row)
        dash = self.paper.px(1.0)
        for marker in markers:
            if not window[0] <= marker.sample < window[1]:
                continue
            x = self.x_px(int(marker.sample))
            y = top + self.paper.px(6.0)
            while y < bottom:
                self.draw.line([(x, y), (x, min(y + dash, bottom))], fill=EVENT_MARK, width=1)
                y += 2 * dash
            draw_text(
                self.draw,
                self.paper,
                (x, top + self.paper.px(5.5)),
                marker.label,
                size_mm=3.0,
                fill=EVENT_MARK,
                anchor="mb",
            )
            placed.append(PlacedMarker(int(marker.sample), marker.label, x))
        return tuple(placed)

    def text_block(self, header: Sequence[str], footer: Sequence[str]) -> None:
        paper = self.paper
        x = paper.px(5.0)
        for i, line in enumerate(header):
            y = paper.px(3.0 + 5.5 * i)
            draw_text(self.draw, paper, (x, y), line, size_mm=4.5 if i == 0 else 3.5)
        for i, line in enumerate(footer):
            y = paper.footer_top_px + paper.px(1.5 + 4.0 * i)
            draw_text(self.draw, paper, (x, y), line, size_mm=3.0)

    def finish(self, *, absent: Sequence[str], markers: tuple[PlacedMarker, ...]) -> EcgImage:
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        return EcgImage(
            png=buffer.getvalue(),
            width_px=self.paper.width_px,
            height_px=self.paper.height_px,
            px_per_mm=self.paper.px_per_mm,
            fs=self.fs_hz,
            start=self.start,
            traces=self.traces,
            absent=tuple(absent),
            calibration=self.pulses,
            markers=markers,
        )


def _scale_line(fs_hz: float, start: int, stop: int) -> str:
    return (
        f"{SPEED_MM_PER_S:g} mm/s   {GAIN_MM_PER_MV:g} mm/mV   fs {fs_hz:g} Hz   "
        f"samples {start}-{stop} ({start / fs_hz:.2f}-{stop / fs_hz:.2f} s)"
    )


def _footer(absent: Sequence[str], clipped: Sequence[str]) -> list[str]:
    limit_mv = ROW_MM / 2 / GAIN_MM_PER_MV
    notes = []
    if absent:
        notes.append(f"Absent leads: {', '.join(absent)}.")
    if clipped:
        notes.append(f"Clipped at ±{limit_mv:g} mV (orange bars): {', '.join(clipped)}.")
    return ["Baseline: each lead's median over the window removed; no filtering.", "  ".join(notes)]


def render_12lead(
    signals: NDArray[np.float64],
    fs: float,
    leads: list[str],
    *,
    start: int = 0,
    px_per_mm: float = 5.0,
    title: str | None = None,
    markers: Sequence[Marker] = (),
) -> EcgImage:
    """Standard 12-lead page: 3x4 cells of 2.5 s plus a 10 s lead II rhythm strip, as PNG.

    ``signals`` is (n_samples, n_leads) in mV at ``fs`` (Hz, 100-2000) with ``leads`` naming
    the columns (case-insensitive; aliases such as AVR, MLII; unknown names are ignored).
    The page shows the 10 s from sample ``start`` (less if the record ends sooner): cell column
    k holds seconds 2.5k-2.5(k+1) of that window. ``px_per_mm`` (2-20) sets the resolution;
    ``markers`` (input sample indices) are drawn on the rhythm strip.
    """
    fs_hz = check_fs(fs)
    ppm = _check_px_per_mm(px_per_mm)
    if not isinstance(leads, Sequence) or isinstance(leads, str):
        raise SignalError(f"leads must be a list of lead names, got {type(leads).__name__}")
    if not all(isinstance(name, str) for name in leads):
        raise SignalError(f"leads must be strings, got {list(leads)!r}")
    shape = np.shape(signals)
    if len(shape) != 2:
        raise SignalError(f"signals must be 2-D (n_samples, n_leads), got shape {shape}")
    if shape[1] != len(leads):
        hint = " (transposed?)" if shape[0] == len(leads) else ""
        raise SignalError(
            f"signals has {shape[1]} columns but {len(leads)} lead names were given{hint}"
        )
    data = to_millivolts(signals, n_leads=len(leads))
    n_samples = data.shape[0]
    if n_samples == 0:
        raise SignalError("signals is empty; expected at least one sample")
    start = _check_start(start, n_samples)
    marks = _check_markers(markers)

    stop = min(start + round(REPORT_S * fs_hz), n_samples)
    found = match_leads(leads)
    baselines = {
        lead: float(np.median(data[start:stop, channel])) for lead, channel in found.items()
    }
    canvas = _Canvas(Paper(ppm, n_rows=4, trace_mm=REPORT_S * SPEED_MM_PER_S), fs_hz, start)
    absent = [lead for column in LAYOUT_COLUMNS for lead in column if lead not in found]
    for k, column in enumerate(LAYOUT_COLUMNS):
        first = min(start + round(k * CELL_S * fs_hz), stop)
        last = min(start + round((k + 1) * CELL_S * fs_hz), stop)
        for row, lead in enumerate(column):
            if k:
                canvas.separator(row, k * CELL_S)
            if lead not in found:
                canvas.absent(row, k * CELL_S, CELL_S, lead)
                continue
            canvas.label(row, k * CELL_S, lead)
            if last > first:
                channel = found[lead]
                cell = (row, k)
                canvas.trace(
                    lead, lead, data[:, channel], channel, cell, (first, last), baselines[lead]
                )
    rhythm_row = 3
    if RHYTHM_LEAD in found:
        channel = found[RHYTHM_LEAD]
        canvas.label(rhythm_row, 0.0, RHYTHM_LEAD)
        canvas.trace(
            RHYTHM,
            RHYTHM_LEAD,
            data[:, channel],
            channel,
            (rhythm_row, 0),
            (start, stop),
            baselines[RHYTHM_LEAD],
        )
    else:
        canvas.absent(rhythm_row, 0.0, REPORT_S, f"rhythm {RHYTHM_LEAD}")
    placed = canvas.markers(marks, rhythm_row, (start, stop))
    clipped = [key for key, trace in canvas.traces.items() if trace.clipped.any()]
    header = [title or "12-lead ECG", _scale_line(fs_hz, start, stop)]
    canvas.text_block(header, _footer(absent, clipped))
    return canvas.finish(absent=absent, markers=placed)


def render_strip(
    signal: NDArray[np.float64],
    fs: float,
    lead: str,
    *,
    seconds: float = 10.0,
    start: int = 0,
    px_per_mm: float = 5.0,
    title: str | None = None,
    markers: Sequence[Marker] = (),
) -> EcgImage:
    """One-lead evidence strip of ``seconds`` (s, ≤ 60) from sample ``start``, as PNG.

    ``signal`` is 1-D in mV at ``fs`` (Hz, 100-2000); same grid and scale as
    :func:`render_12lead`. The trace is ``traces["rhythm"]``, labelled ``lead``.
    """
    fs_hz = check_fs(fs)
    ppm = _check_px_per_mm(px_per_mm)
    if not isinstance(lead, str) or not lead.strip():
        raise SignalError(f"lead must be a lead name, got {lead!r}")
    try:
        length_s = float(seconds)
    except (TypeError, ValueError) as exc:
        raise SignalError(f"seconds must be a number, got {seconds!r}") from exc
    if not math.isfinite(length_s) or not 0 < length_s <= MAX_STRIP_S:
        raise SignalError(f"seconds must be in (0, {MAX_STRIP_S:g}] s, got {seconds!r}")
    shape = np.shape(signal)
    if len(shape) != 1:
        raise SignalError(f"signal must be 1-D (one lead), got shape {shape}")
    data = to_millivolts(signal)
    if data.size == 0:
        raise SignalError("signal is empty; expected at least one sample")
    start = _check_start(start, data.size)
    marks = _check_markers(markers)

    stop = min(start + round(length_s * fs_hz), data.size)
    name = lead.strip()
    display = canonical_lead(name) or name
    baseline = float(np.median(data[start:stop]))
    canvas = _Canvas(Paper(ppm, n_rows=1, trace_mm=length_s * SPEED_MM_PER_S), fs_hz, start)
    canvas.label(0, 0.0, name)
    canvas.trace(RHYTHM, display, data, 0, (0, 0), (start, stop), baseline)
    placed = canvas.markers(marks, 0, (start, stop))
    clipped = [name] if canvas.traces[RHYTHM].clipped.any() else []
    header = [title or f"ECG strip, lead {name}", _scale_line(fs_hz, start, stop)]
    canvas.text_block(header, _footer((), clipped))
    return canvas.finish(absent=(), markers=placed)
