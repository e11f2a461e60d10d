"""The ambulance's camera and microphone as aiortc tracks.

Without a camera (the demo, tests) the video is a test pattern whose frame counter is drawn in
the picture and carried in the frame's timestamp, so a receiver can check nothing was frozen or
skipped; the audio is a quiet 440 Hz tone. A real camera or microphone is opened with PyAV through
aiortc's ``MediaPlayer`` (e.g. ``/dev/video0`` with ``v4l2``, ``default`` with ``pulse``).
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from dataclasses import dataclass

import numpy as np
from aiortc import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from ambulink.errors import ConfigError

# 5x7 bitmaps of the digits, one row per string, for the frame counter.
VIDEO_CLOCK_HZ = 90_000  # RTP video clock

_DIGITS = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
}
_GLYPHS = {d: np.array([[c == "1" for c in row] for row in rows]) for d, rows in _DIGITS.items()}


def draw_counter(image: np.ndarray, number: int, *, scale: int = 4) -> None:
    """Draw ``number`` in white on a black box, top left, into an RGB ``image`` (in place)."""
    text_width = len(str(number)) * 6 * scale
    image[4 : 12 + 7 * scale, 4 : min(12 + text_width, image.shape[1])] = 0
    x = 8
    for digit in str(number):
        glyph = np.kron(_GLYPHS[digit], np.ones((scale, scale), dtype=bool))
        h, w = glyph.shape
        region = image[8 : 8 + h, x : x + w]
        region[glyph[: region.shape[0], : region.shape[1]]] = 255
        x += w + scale
        if x >= image.shape[1] - 8:
            return


def read_counter(image: np.ndarray, *, scale: int = 4, digits: int = 8) -> int | None:
    """The number ``draw_counter`` drew (for tests of a received picture), or None."""
    gray = image.mean(axis=2) > 128 if image.ndim == 3 else image > 128
    text = ""
    x = 8
    for _ in range(digits):
        cell = gray[8 : 8 + 7 * scale, x : x + 5 * scale]
        if cell.shape != (7 * scale, 5 * scale):
            break
        small = cell.reshape(7, scale, 5, scale).mean(axis=(1, 3)) > 0.5
        match = [d for d, g in _GLYPHS.items() if np.array_equal(g, small)]
        if not match:
            break
        text += match[0]
        x += 6 * scale
    return int(text) if text else None


class TestPatternTrack(VideoStreamTrack):
    """Colour bars with a moving band and the frame number drawn top left."""

    def __init__(self, width: int = 320, height: int = 240, fps: int = 10) -> None:
        super().__init__()
        if width < 64 or height < 48 or not 1 <= fps <= 60:
            raise ConfigError(
                f"test pattern needs at least 64x48 at 1-60 fps, got {width}x{height}@{fps}"
            )
        self.width, self.height, self.fps = width, height, fps
        bars = np.array(
            [
                [192, 192, 192],
                [192, 192, 0],
                [0, 192, 192],
                [0, 192, 0],
                [192, 0, 192],
                [192, 0, 0],
                [0, 0, 192],
            ],
            dtype=np.uint8,
        )
        columns = np.repeat(bars, math.ceil(width / len(bars)), axis=0)[:width]
        self._base = np.repeat(columns[np.newaxis, :, :], height, axis=0)
        self.frames_made = 0
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK_HZ)
        self._started: float | None = None
        self._timestamp = 0

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        """The next frame's 90 kHz timestamp, paced at ``fps`` (aiortc's own is fixed at 30)."""
        if self.readyState != "live":
            raise MediaStreamError
        step = VIDEO_CLOCK_HZ // self.fps
        if self._started is None:
            self._started = time.monotonic()
            self._timestamp = 0
        else:
            self._timestamp += step
            await asyncio.sleep(self._started + self._timestamp / VIDEO_CLOCK_HZ - time.monotonic())
        return self._timestamp, self._time_base

    async def recv(self) -> VideoFrame:
        pts, _ = await self.next_timestamp()
        number = self.frames_made
        self.frames_made += 1
        image = self._base.copy()
        band = (number * 4) % self.height
        image[band : band + 6] = 255 - image[band : band + 6]
        draw_counter(image, number)
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = self._time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A quiet 440 Hz tone in aiortc's 20 ms mono s16 audio frames (Opus-encoded on the way)."""

    def __init__(self, frequency_hz: float = 440.0, level: float = 0.05) -> None:
        super().__init__()
        self._phase = 0
        self._frequency_hz = frequency_hz
        self._level = level

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # silence with the right timing and pts
        assert isinstance(frame, AudioFrame)
        n = frame.samples
        t = (self._phase + np.arange(n)) / frame.sample_rate
        self._phase += n
        tone = (self._level * 32767 * np.sin(2 * math.pi * self._frequency_hz * t)).astype(np.int16)
        out = AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate = frame.sample_rate
        out.pts = frame.pts
        out.time_base = frame.time_base
        return out


@dataclass(frozen=True)
class MediaChoice:
    """``camera``: "test", "none" or a device (e.g. /dev/video0); ``mic``: "tone", "none" or a
    PulseAudio/ALSA source name."""

    camera: str = "none"
    mic: str = "none"


def open_tracks(choice: MediaChoice) -> list[MediaStreamTrack]:
    """The tracks to send for ``choice`` (possibly none)."""
    tracks: list[MediaStreamTrack] = []
    if choice.camera == "test":
        tracks.append(TestPatternTrack())
    elif choice.camera != "none":
        try:
            player = MediaPlayer(choice.camera, format="v4l2", options={"video_size": "640x480"})
        except Exception as exc:  # PyAV raises its own error types for missing devices
            raise ConfigError(f"could not open camera {choice.camera}: {exc}") from exc
        if player.video is None:
            raise ConfigError(f"{choice.camera} has no video")
        tracks.append(player.video)
    if choice.mic == "tone":
        tracks.append(ToneTrack())
    elif choice.mic != "none":
        try:
            player = MediaPlayer(choice.mic, format="pulse")
        except Exception as exc:
            raise ConfigError(f"could not open microphone {choice.mic}: {exc}") from exc
        if player.audio is None:
            raise ConfigError(f"{choice.mic} has no audio")
        tracks.append(player.audio)
    return tracks
