"""12-lead pages and strips are drawn from the right samples, on the right grid and scale."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from ambulink.data import record_path
from ambulink.errors import RecordNotFound, SignalError
from ambulink.reports import EcgImage, Marker, Trace, render_12lead, render_strip
from ambulink.reports.command import ecg_report_command, register_report
from ambulink.reports.leads import canonical_lead
from ambulink.reports.paper import (
    CLIP_MARK,
    EVENT_MARK,
    HEADER_MM,
    MAJOR_LINE,
    MARGIN_MM,
    MINOR_LINE,
    ROW_MM,
    TRACE,
)
from tests.conftest import Record, bundled

MM_PER_S = 25.0
MM_PER_MV = 10.0


def pixels(image: EcgImage) -> NDArray[np.uint8]:
    """The decoded PNG as an (height, width, 3) array."""
    with Image.open(io.BytesIO(image.png)) as png:
        assert png.format == "PNG"
        return np.asarray(png.convert("RGB"))


def expected_y(trace: Trace, samples_mv: NDArray[np.float64], ppm: float) -> NDArray[np.float64]:
    """The documented mapping, computed here from the input samples."""
    segment = samples_mv[trace.first : trace.last]
    result: NDArray[np.float64] = trace.centre_y_px - (segment - trace.baseline_mv) * (
        MM_PER_MV * ppm
    )
    return result


@pytest.fixture(scope="module")
def ptbxl() -> Record:
    return bundled("ptbxl/00003_hr")


@pytest.fixture(scope="module")
def ptbdb() -> Record:
    return bundled("ptbdb/s0010_re")


@pytest.fixture(scope="module")
def ptbxl_page(ptbxl: Record) -> EcgImage:
    return render_12lead(ptbxl.signals_mv, ptbxl.fs, ptbxl.leads, title="PTB-XL 00003")


def test_png_decodes_with_the_reported_size(ptbxl_page: EcgImage) -> None:
    page = pixels(ptbxl_page)
    assert page.shape == (ptbxl_page.height_px, ptbxl_page.width_px, 3)
    # 10 s at 25 mm/s plus margins and calibration area, at 5 px/mm
    assert ptbxl_page.width_px >= 250 * 5
    assert set(ptbxl_page.traces) == {
        "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "rhythm",
    }  # fmt: skip
    assert ptbxl_page.absent == ()


@pytest.mark.parametrize(("name", "start"), [("ptbxl", 0), ("ptbdb", 1234)])
def test_v2_is_drawn_from_seconds_5_to_7_5_of_v2(
    name: str, start: int, request: pytest.FixtureRequest
) -> None:
    """V2 sits in the third column (V1-V3), so it shows seconds 5-7.5 of the window."""
    record: Record = request.getfixturevalue(name)
    page = render_12lead(record.signals_mv, record.fs, record.leads, start=start)
    v2 = page.traces["V2"]
    channel = [n.upper() for n in record.leads].index("V2")
    fs = record.fs
    assert (v2.lead, v2.channel, v2.row, v2.column) == ("V2", channel, 1, 2)
    assert (v2.first, v2.last) == (start + int(5 * fs), start + int(7.5 * fs))
    avl = page.traces["aVL"]  # second column: seconds 2.5-5
    assert (avl.first, avl.last) == (start + int(2.5 * fs), start + int(5 * fs))
    lead = record.signals_mv[:, channel]
    assert v2.baseline_mv == pytest.approx(np.median(lead[start : start + int(10 * fs)]))
    assert not v2.clipped.any()
    np.testing.assert_allclose(v2.y, expected_y(v2, lead, page.px_per_mm), atol=1e-9)
    # Another lead's samples or a one-sample shift would not fit the picture.
    v3 = record.signals_mv[:, channel + 1]
    assert np.abs(v2.y - expected_y(v2, v3, page.px_per_mm)).max() > 5
    shifted = np.roll(lead, 1)
    assert np.abs(v2.y - expected_y(v2, shifted, page.px_per_mm)).max() > 1


def test_columns_are_consecutive_2_5_s_at_25_mm_per_s(ptbdb: Record) -> None:
    ppm = 4.0
    page = render_12lead(ptbdb.signals_mv, ptbdb.fs, ptbdb.leads, start=500, px_per_mm=ppm)
    dx = MM_PER_S * ppm / ptbdb.fs  # 0.1 px per sample at 1000 Hz
    rhythm = page.traces["rhythm"]
    for lead, column in [("I", 0), ("aVL", 1), ("V3", 2), ("V6", 3)]:
        trace = page.traces[lead]
        assert trace.column == column
        assert trace.first == 500 + column * 2500
        np.testing.assert_allclose(np.diff(trace.x), dx)
        # the cell starts 2.5 s x 25 mm/s = 62.5 mm per column right of the rhythm strip's start
        assert trace.x[0] - rhythm.x[0] == pytest.approx(column * 62.5 * ppm)
    assert rhythm.x[-1] - rhythm.x[0] == pytest.approx((10_000 - 1) * dx)


def test_rhythm_strip_is_ten_seconds_of_lead_ii(ptbxl: Record, ptbxl_page: EcgImage) -> None:
    rhythm = ptbxl_page.traces["rhythm"]
    assert (rhythm.lead, rhythm.channel, rhythm.row) == ("II", 1, 3)
    assert (rhythm.first, rhythm.last) == (0, 5000)
    np.testing.assert_allclose(
        rhythm.y, expected_y(rhythm, ptbxl.signals_mv[:, 1], ptbxl_page.px_per_mm), atol=1e-9
    )
    # the same lead II seconds as the II cell, one row lower
    cell = ptbxl_page.traces["II"]
    rows_apart = rhythm.centre_y_px - cell.centre_y_px
    assert rows_apart == pytest.approx(2 * ROW_MM * ptbxl_page.px_per_mm)
    np.testing.assert_allclose(rhythm.y[: cell.last] - rows_apart, cell.y, atol=1e-9)


def test_grid_lines_and_trace_have_their_colours(ptbxl_page: EcgImage) -> None:
    page = pixels(ptbxl_page)
    ppm = ptbxl_page.px_per_mm
    top = round((HEADER_MM + 0.5) * ppm)  # half a mm into row 0, above the traces and labels
    major_x = [round((MARGIN_MM + 5 * k) * ppm) for k in range(1, 50)]
    minor_x = [round((MARGIN_MM + 5 * k + 2) * ppm) for k in range(1, 50)]
    assert np.mean([tuple(page[top, x]) == MAJOR_LINE for x in major_x]) > 0.95
    assert np.mean([tuple(page[top, x]) == MINOR_LINE for x in minor_x]) > 0.95
    v2 = ptbxl_page.traces["V2"]
    on_trace = [tuple(page[round(v2.y[i]), round(v2.x[i])]) for i in range(0, 1250, 50)]
    assert all(colour == TRACE for colour in on_trace)
    assert TRACE not in (MAJOR_LINE, MINOR_LINE)


def test_calibration_pulse_is_10_mm_high_and_200_ms_wide(ptbxl_page: EcgImage) -> None:
    page = pixels(ptbxl_page)
    ppm = ptbxl_page.px_per_mm
    assert len(ptbxl_page.calibration) == 4
    for pulse in ptbxl_page.calibration:
        assert pulse.base_y_px - pulse.top_y_px == pytest.approx(10 * ppm)  # 1 mV at 10 mm/mV
        assert pulse.x1_px - pulse.x0_px == pytest.approx(0.2 * MM_PER_S * ppm)
        # drawn: the top edge is black mid-pulse, nothing black above it in the row
        mid = round((pulse.x0_px + pulse.x1_px) / 2)
        column = page[:, mid]
        black = np.flatnonzero((column == TRACE).all(axis=1))
        in_row = black[(black > pulse.top_y_px - 10 * ppm) & (black < pulse.base_y_px + 2)]
        assert abs(in_row.min() - pulse.top_y_px) <= 1
        assert in_row.max() - pulse.top_y_px <= 2  # the pulse is hollow below its top
        before = round(pulse.x0_px - 2)  # the flat lead-in sits on the row's centre line
        assert tuple(page[round(pulse.base_y_px), before]) == TRACE
        assert round(pulse.base_y_px) == round((HEADER_MM + ROW_MM * (pulse.row + 0.5)) * ppm)


def test_missing_lead_is_absent_and_has_no_trace(ptbxl: Record) -> None:
    keep = [i for i, name in enumerate(ptbxl.leads) if name != "V4"]
    page = render_12lead(ptbxl.signals_mv[:, keep], ptbxl.fs, [ptbxl.leads[i] for i in keep])
    assert page.absent == ("V4",)
    assert "V4" not in page.traces and "V5" in page.traces
    drawn = pixels(page)
    ppm = page.px_per_mm

    def inked_columns(column: int, row: int) -> float:
        """Share of pixel columns of a cell holding any black pixel."""
        x0 = round((MARGIN_MM + 10 + 62.5 * column + 1) * ppm)
        x1 = round((MARGIN_MM + 10 + 62.5 * (column + 1) - 1) * ppm)
        y0, y1 = (
            round((HEADER_MM + ROW_MM * row + 8) * ppm),
            round((HEADER_MM + ROW_MM * (row + 1)) * ppm),
        )
        cell = drawn[y0:y1, x0:x1]
        return float((cell == TRACE).all(axis=2).any(axis=0).mean())

    assert inked_columns(3, 0) < 0.6  # only the "V4 (absent)" text
    assert inked_columns(3, 1) > 0.95  # V5 is a trace all along


def test_lowercase_ptbdb_names_match_and_extra_leads_are_ignored(ptbdb: Record) -> None:
    assert ptbdb.leads[3] == "avr" and ptbdb.leads[-1] == "vz"
    page = render_12lead(ptbdb.signals_mv, ptbdb.fs, ptbdb.leads)
    assert page.absent == ()
    assert page.traces["aVR"].channel == 3
    assert {t.channel for t in page.traces.values()} == set(range(12))


def test_lead_names_and_aliases() -> None:
    assert canonical_lead("AVR") == "aVR"
    assert canonical_lead("avf") == "aVF"
    assert canonical_lead("MLII") == "II"
    assert canonical_lead(" v2 ") == "V2"
    assert canonical_lead("vx") is None
    assert canonical_lead("V7") is None


def test_short_window_renders_what_exists(ptbxl: Record) -> None:
    page = render_12lead(ptbxl.signals_mv, ptbxl.fs, ptbxl.leads, start=3000)  # 4 s remain
    assert (page.traces["I"].first, page.traces["I"].last) == (3000, 4250)
    assert (page.traces["aVR"].first, page.traces["aVR"].last) == (4250, 5000)
    assert "V1" not in page.traces and "V6" not in page.traces
    assert (page.traces["rhythm"].first, page.traces["rhythm"].last) == (3000, 5000)
    assert pixels(page).shape[:2] == (page.height_px, page.width_px)


def test_large_signals_are_clipped_to_their_row_and_marked(ptbxl: Record) -> None:
    page = render_12lead(ptbxl.signals_mv * 4, ptbxl.fs, ptbxl.leads)
    assert page.clipped_leads
    for key in page.clipped_leads:
        trace = page.traces[key]
        top = (HEADER_MM + ROW_MM * trace.row) * page.px_per_mm
        assert trace.y.min() >= top and trace.y.max() <= top + ROW_MM * page.px_per_mm
        samples = ptbxl.signals_mv[:, trace.channel] * 4
        exact = expected_y(trace, samples, page.px_per_mm)
        np.testing.assert_allclose(trace.y[~trace.clipped], exact[~trace.clipped])
        assert ((exact[trace.clipped] < top) | (exact[trace.clipped] > top + ROW_MM * 5)).all()
    drawn = pixels(page)
    v2 = page.traces["V2"]
    i = int(np.flatnonzero(v2.clipped)[0])
    mark = drawn[round(v2.y[i]) - 2 : round(v2.y[i]) + 3, round(v2.x[i]) - 8 : round(v2.x[i]) + 9]
    assert (mark == CLIP_MARK).all(axis=2).any()


def test_markers_are_drawn_on_the_rhythm_strip(ptbdb: Record) -> None:
    marks = [Marker(2000, "J"), Marker(9000, "onset"), Marker(30_000, "later")]
    page = render_12lead(ptbdb.signals_mv, ptbdb.fs, ptbdb.leads, start=1000, markers=marks)
    rhythm = page.traces["rhythm"]
    assert [(m.sample, m.label) for m in page.markers] == [(2000, "J"), (9000, "onset")]
    for placed in page.markers:
        assert placed.x_px == pytest.approx(rhythm.x[placed.sample - rhythm.first])
        column = pixels(page)[:, round(placed.x_px)]
        assert ((column == EVENT_MARK).all(axis=1)).sum() > 10 * page.px_per_mm


def test_render_strip_holds_ten_seconds_of_mitdb_100() -> None:
    record = bundled("mitdb/100")
    start = 360 * 60
    strip = render_strip(record.signals_mv[:, 0], record.fs, record.leads[0], start=start)
    trace = strip.traces["rhythm"]
    assert (trace.first, trace.last) == (start, start + 3600)  # 10 s at 360 Hz
    assert trace.lead == "II" and record.leads[0] == "MLII"
    np.testing.assert_allclose(np.diff(trace.x), MM_PER_S * 5.0 / 360)
    np.testing.assert_allclose(trace.y, expected_y(trace, record.signals_mv[:, 0], 5.0))
    assert pixels(strip).shape[:2] == (strip.height_px, strip.width_px)
    assert len(strip.calibration) == 1
    assert strip.calibration[0].base_y_px - strip.calibration[0].top_y_px == pytest.approx(50)


def test_fractional_px_per_mm_keeps_the_scale(ptbxl: Record) -> None:
    page = render_12lead(ptbxl.signals_mv, ptbxl.fs, ptbxl.leads, px_per_mm=3.7)
    assert pixels(page).shape[:2] == (page.height_px, page.width_px)
    v1 = page.traces["V1"]
    np.testing.assert_allclose(np.diff(v1.x), MM_PER_S * 3.7 / 500)
    np.testing.assert_allclose(v1.y, expected_y(v1, ptbxl.signals_mv[:, 6], 3.7), atol=1e-9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s, fs, leads: (np.where(np.arange(len(s))[:, None] == 7, np.nan, s), fs, leads),
         "finite"),
        (lambda s, fs, leads: (s[:, 0], fs, leads), "2-D"),
        (lambda s, fs, leads: (s.T, fs, leads), "transposed"),
        (lambda s, fs, leads: (s, fs, leads[:11]), "12 columns but 11 lead names"),
        (lambda s, fs, leads: (s, 50, leads), "fs must be 100-2000 Hz, got 50"),
        (lambda s, fs, leads: (s, 5000.0, leads), "fs must be 100-2000 Hz"),
        (lambda s, fs, leads: (s[:0], fs, leads), "empty"),
    ],
)  # fmt: skip
def test_bad_input_raises_signal_error(ptbxl: Record, change: object, message: str) -> None:
    assert callable(change)
    signals, fs, leads = change(ptbxl.signals_mv, ptbxl.fs, list(ptbxl.leads))
    with pytest.raises(SignalError, match=message):
        render_12lead(signals, fs, leads)


def test_bad_options_raise_signal_error(ptbxl: Record) -> None:
    s, fs, leads = ptbxl.signals_mv, ptbxl.fs, ptbxl.leads
    with pytest.raises(SignalError, match="start must be a sample index in 0-4999, got 5000"):
        render_12lead(s, fs, leads, start=5000)
    with pytest.raises(SignalError, match="px_per_mm must be 2-20"):
        render_12lead(s, fs, leads, px_per_mm=0.5)
    with pytest.raises(SignalError, match="1-D"):
        render_strip(s, fs, "II")
    with pytest.raises(SignalError, match="seconds"):
        render_strip(s[:, 1], fs, "II", seconds=0)


def test_cli_writes_a_png(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="ambulink")
    register_report(parser.add_subparsers(dest="command"))
    out = tmp_path / "report.png"
    args = parser.parse_args(
        ["ecg-report", record_path("ptbdb/s0010_re"), "--start", "2", "--out", str(out)]
    )
    assert args.run(args) == 0
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size == (1350, 1025)


def test_cli_missing_record_is_record_not_found(tmp_path: Path) -> None:
    with pytest.raises(RecordNotFound, match="no WFDB record"):
        ecg_report_command(str(tmp_path / "nope"), tmp_path / "x.png", 0.0, 5.0, None)
    assert not (tmp_path / "x.png").exists()
