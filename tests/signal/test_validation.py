import numpy as np
import pytest

from ambulink.errors import AmbulinkError, SignalError
from ambulink.signal.validation import as_record, check_fs, hold_invalid, to_millivolts


@pytest.mark.parametrize("fs", [50, 5000, float("nan"), "fast", None, -360])
def test_fs_outside_the_supported_range_is_rejected(fs: object) -> None:
    with pytest.raises(SignalError, match="fs must be"):
        check_fs(fs)


def test_errors_are_ambulink_errors_with_a_code() -> None:
    with pytest.raises(AmbulinkError) as info:
        as_record(np.array([1.0, np.nan, 2.0]), 360)
    assert info.value.code == "signal_error"
    assert "NaN or inf" in str(info.value)


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        (np.zeros((2, 10)), r"samples down the rows .* pass signal.T"),
        (np.zeros((40, 20)), "at most 18"),
        (np.zeros((10, 2, 2)), "1-D"),
        (np.array([]), "empty"),
        (np.array(["a", "b"]), "dtype"),
        (np.array([1.0, np.inf]), "finite"),
        (np.array([200, 400], dtype=np.int16), r"p_signal, or divide d_signal by its adc_gain"),
    ],
)
def test_bad_records_say_what_is_wrong(signal: np.ndarray, message: str) -> None:
    with pytest.raises(SignalError, match=message):
        as_record(signal, 360)


def test_integer_samples_need_a_gain_and_are_scaled() -> None:
    with pytest.raises(SignalError, match="gain"):
        to_millivolts(np.array([200, 400], dtype=np.int16))
    assert np.allclose(to_millivolts(np.array([200, 400], dtype=np.int16), gain=200), [1.0, 2.0])
    with pytest.raises(SignalError, match=r"\(n_samples, 3\)"):
        to_millivolts(np.zeros((10, 2)), n_leads=3)


@pytest.mark.parametrize("shape", [(50,), (50, 1), (50, 2), (50, 12)])
def test_records_are_leads_in_columns(shape: tuple[int, ...]) -> None:
    record, fs = as_record(np.ones(shape), 250)
    assert record.shape == (50, shape[1] if len(shape) == 2 else 1) and fs == 250.0


def test_invalid_samples_are_held_at_the_last_valid_value() -> None:
    signals = np.array(
        [[np.nan, 1.0, np.nan], [2.0, np.nan, np.nan], [np.nan, np.nan, np.nan], [3.0, 4.0, np.inf]]
    )
    held, counts = hold_invalid(signals)
    assert counts == [2, 2, 4]
    assert held.tolist() == [[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [3.0, 4.0, 0.0]]
    clean = np.ones((5, 2))
    assert hold_invalid(clean)[0] is clean and hold_invalid(clean)[1] == [0, 0]
