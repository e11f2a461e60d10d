"""ECG paper: page geometry in mm, the red grid, calibration pulses and text.

Everything is laid out in millimetres on a whole-mm grid and converted to pixels with
``px_per_mm``, so grid lines, the calibration pulse and the traces share one scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from PIL import ImageDraw, ImageFont

SPEED_MM_PER_S = 25.0
GAIN_MM_PER_MV = 10.0

MARGIN_MM = 5  # white border left and right of the grid
CALIBRATION_MM = 10  # grid before the traces that holds the calibration pulse
HEADER_MM = 15  # text above the grid
FOOTER_MM = 10  # text below the grid
ROW_MM = 45  # one row of traces: ±2.25 mV about its centre line

PULSE_MV = 1.0
PULSE_S = 0.2

Rgb = tuple[int, int, int]
PAPER: Rgb = (255, 255, 255)
MINOR_LINE: Rgb = (250, 205, 205)  # 1 mm
MAJOR_LINE: Rgb = (232, 128, 128)  # 5 mm
TRACE: Rgb = (0, 0, 0)
TEXT: Rgb = (0, 0, 0)
CLIP_MARK: Rgb = (215, 110, 0)
EVENT_MARK: Rgb = (0, 80, 210)


@dataclass(frozen=True)
class Pulse:
    """One drawn 1 mV calibration pulse (px): rising edge at ``x0_px``, falling at ``x1_px``."""

    row: int
    x0_px: float
    x1_px: float
    base_y_px: float
    top_y_px: float


@dataclass(frozen=True)
class Paper:
    """Page of ``n_rows`` trace rows, each ``trace_mm`` (mm) long, at ``px_per_mm``."""

    px_per_mm: float
    n_rows: int
    trace_mm: float

    @property
    def grid_width_mm(self) -> int:
        return CALIBRATION_MM + math.ceil(self.trace_mm)

    @property
    def width_px(self) -> int:
        return round((2 * MARGIN_MM + self.grid_width_mm) * self.px_per_mm)

    @property
    def height_px(self) -> int:
        return round((HEADER_MM + self.n_rows * ROW_MM + FOOTER_MM) * self.px_per_mm)

    def px(self, mm: float) -> float:
        return mm * self.px_per_mm

    @property
    def trace_left_px(self) -> float:
        """x (px) of the first sample of every row."""
        return self.px(MARGIN_MM + CALIBRATION_MM)

    def row_centre_px(self, row: int) -> float:
        """y (px) of row ``row``'s centre line (0 mV after the baseline is removed)."""
        return self.px(HEADER_MM + ROW_MM * (row + 0.5))

    def row_band_px(self, row: int) -> tuple[float, float]:
        """(top, bottom) y (px) that traces of ``row`` are clipped to."""
        return self.px(HEADER_MM + ROW_MM * row), self.px(HEADER_MM + ROW_MM * (row + 1))

    @property
    def footer_top_px(self) -> float:
        return self.px(HEADER_MM + ROW_MM * self.n_rows)

    def line_width_px(self, mm: float) -> int:
        return max(1, round(self.px(mm)))

    def draw_grid(self, draw: ImageDraw.ImageDraw) -> None:
        """1 mm minor lines, then 5 mm major lines over them, across the whole grid area."""
        left_mm, top_mm = MARGIN_MM, HEADER_MM
        width_mm, height_mm = self.grid_width_mm, self.n_rows * ROW_MM
        x0, x1 = round(self.px(left_mm)), round(self.px(left_mm + width_mm))
        y0, y1 = round(self.px(top_mm)), round(self.px(top_mm + height_mm))
        major_width = self.line_width_px(0.2)
        for major in (False, True):
            colour, width = (MAJOR_LINE, major_width) if major else (MINOR_LINE, 1)
            for mm in range(width_mm + 1):
                if (mm % 5 == 0) == major:
                    x = round(self.px(left_mm + mm))
                    draw.line([(x, y0), (x, y1)], fill=colour, width=width)
            for mm in range(height_mm + 1):
                if (mm % 5 == 0) == major:
                    y = round(self.px(top_mm + mm))
                    draw.line([(x0, y), (x1, y)], fill=colour, width=width)

    def draw_pulse(self, draw: ImageDraw.ImageDraw, row: int) -> Pulse:
        """A 1 mV, 200 ms calibration pulse in the calibration area of ``row``."""
        base = self.row_centre_px(row)
        top = base - self.px(PULSE_MV * GAIN_MM_PER_MV)
        start = self.px(MARGIN_MM + 2.0)
        rise = start + self.px(1.0)
        fall = rise + self.px(PULSE_S * SPEED_MM_PER_S)
        end = self.trace_left_px - self.px(1.0)
        points = [(start, base), (rise, base), (rise, top), (fall, top), (fall, base), (end, base)]
        draw.line(points, fill=TRACE, width=self.line_width_px(0.3), joint="curve")
        return Pulse(row, rise, fall, base, top)


@cache
def font(size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size_px`` (the bitmap default without FreeType)."""
    try:
        return ImageFont.load_default(size=size_px)
    except ImportError:  # Pillow built without FreeType
        return ImageFont.load_default()


def draw_text(
    draw: ImageDraw.ImageDraw,
    paper: Paper,
    xy_px: tuple[float, float],
    text: str,
    *,
    size_mm: float = 3.5,
    fill: Rgb = TEXT,
    anchor: str = "la",
) -> None:
    """``text`` at ``xy_px`` with a white halo so it stays legible over the grid."""
    draw.text(
        xy_px,
        text,
        fill=fill,
        font=font(max(8, round(paper.px(size_mm)))),
        anchor=anchor,
        stroke_width=max(1, round(paper.px(0.3))),
        stroke_fill=PAPER,
    )
