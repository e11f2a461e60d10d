import numpy as np
import pytest

from ambulink.errors import SignalError
from ambulink.signal.buffer import SampleWindow


def test_window_keeps_absolute_indices_across_growth_and_trimming() -> None:
    window = SampleWindow(capacity=16)
    data = np.arange(1000, dtype=np.float64)
    for part in np.array_split(data, 37):
        window.append(part)
        window.trim_before(window.end - 50)
    assert window.end == 1000
    assert window.start == 950
    assert np.array_equal(window.view(960, 970), data[960:970])
    assert window.at(999) == 999.0
    # Views clip to what is kept.
    assert np.array_equal(window.view(900, 955), data[950:955])
    with pytest.raises(SignalError, match="not kept"):
        window.at(10)
