import asyncio

import numpy as np
import pytest

from ambulink.ambulance_client.media import (
    MediaChoice,
    ToneTrack,
    draw_counter,
    open_tracks,
    read_counter,
)
from ambulink.ambulance_client.media import (
    TestPatternTrack as PatternTrack,  # aliased: pytest would try to collect Test*
)
from ambulink.errors import ConfigError


def test_the_frame_counter_can_be_read_back() -> None:
    for number in (0, 7, 12345):
        image = np.zeros((120, 320, 3), dtype=np.uint8)
        draw_counter(image, number)
        assert read_counter(image) == number
    assert read_counter(np.zeros((120, 320, 3), dtype=np.uint8)) is None


def test_the_test_pattern_numbers_its_frames_and_the_tone_is_a_tone() -> None:
    async def frames() -> tuple[list[int | None], np.ndarray, int]:
        video, audio = PatternTrack(fps=30), ToneTrack()
        numbers = [read_counter((await video.recv()).to_ndarray(format="rgb24")) for _ in range(3)]
        frame = await audio.recv()
        return numbers, frame.to_ndarray().reshape(-1).astype(float), frame.sample_rate

    numbers, sound, rate = asyncio.run(frames())
    assert numbers == [0, 1, 2]
    spectrum = np.abs(np.fft.rfft(sound))
    peak_hz = np.argmax(spectrum) * rate / len(sound)
    assert abs(peak_hz - 440) < 60 and sound.std() > 100


def test_media_choices_are_checked() -> None:
    assert open_tracks(MediaChoice()) == []
    assert [t.kind for t in open_tracks(MediaChoice(camera="test", mic="tone"))] == [
        "video",
        "audio",
    ]
    with pytest.raises(ConfigError, match="could not open camera /dev/video99"):
        open_tracks(MediaChoice(camera="/dev/video99"))
    with pytest.raises(ConfigError, match="64x48"):
        PatternTrack(width=10)


def test_the_test_pattern_stamps_frames_at_its_own_rate() -> None:
    async def stamps(fps: int) -> list[int]:
        video = PatternTrack(fps=fps)
        return [(await video.recv()).pts for _ in range(4)]

    # 90 kHz RTP clock: 9000 ticks per frame at 10 fps, 3000 at 30 (aiortc's fixed rate).
    assert asyncio.run(stamps(10)) == [0, 9000, 18000, 27000]
    assert asyncio.run(stamps(30)) == [0, 3000, 6000, 9000]
