"""The binary ECG frame of DESIGN §3.2: pure encode/decode, versioned, every byte checked.

Layout (little-endian), 36-byte header, samples, CRC-32::

    magic "AL" | version u8 | kind u8 | stream_id u32 | seq u64 | first_sample u64 | fs u16
    | n_leads u8 | n_samples u16 | gain f32 | lead_off u16 | flags u8
    | int16 samples, sample-major (s0L0 s0L1 ... s1L0 ...) | CRC-32 (zlib) of all bytes before, u32

Samples are ADC units with 0 = 0 mV: ``mV = sample / gain``. A WFDB record's ``baseline`` must be
subtracted before framing. ``flags`` has no bits defined in version 1; it is carried unchanged.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ambulink.errors import ProtocolError

PROTOCOL_VERSION: Final = 1
SUPPORTED_VERSIONS = (1,)
KIND_ECG = 1
KINDS = {KIND_ECG: "ECG"}
MAX_FRAME_BYTES = 65536

MIN_FS_HZ, MAX_FS_HZ = 100, 2000
MAX_LEADS = 18
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1
_F32_MAX = 3.4028234663852886e38

_HEADER = struct.Struct("<2sBBIQQHBHfHB")
_CRC = struct.Struct("<I")
_LEADS_SAMPLES = struct.Struct("<BH")  # n_leads, n_samples: where a frame's size is read
_LEADS_SAMPLES_AT = struct.calcsize("<2sBBIQQH")
_F32 = struct.Struct("<f")
MAGIC = b"AL"
HEADER_BYTES = _HEADER.size  # 36
OVERHEAD_BYTES = _HEADER.size + _CRC.size  # 40
MAX_SAMPLE_VALUES = (MAX_FRAME_BYTES - OVERHEAD_BYTES) // 2  # n_samples x n_leads per frame

_WIRE_INT16 = np.dtype("<i2")


class _Header(NamedTuple):
    magic: bytes
    version: int
    kind: int
    stream_id: int
    seq: int
    first_sample: int
    fs: int
    n_leads: int
    n_samples: int
    gain: float
    lead_off: int
    flags: int


@dataclass(frozen=True, eq=False, slots=True)
class EcgFrame:
    """One frame of one ECG stream: ``n_samples`` consecutive samples of every lead.

    ``samples`` is int16 ADC units (``mV = samples / gain``), shape ``(n_samples, n_leads)``,
    C-contiguous and read-only; an array that is not already so is copied. ``gain`` is ADC units
    per mV, stored rounded to float32 (as on the wire) so that ``decode(encode(f)) == f``.
    ``lead_off`` bit ``i`` set means lead ``i`` is off. Construction validates every field and
    raises ``ProtocolError`` saying what was expected and what came.
    """

    stream_id: int
    seq: int
    first_sample: int
    fs: int
    gain: float
    lead_off: int
    flags: int
    samples: NDArray[np.int16]
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        try:
            samples = _as_frame_samples(self.samples)
            gain = _as_f32_gain(self.gain)
            fields = _checked_fields(self, n_leads=samples.shape[1])
        except ProtocolError as exc:
            raise ProtocolError(f"ECG frame: {exc}") from None
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "gain", gain)
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_leads(self) -> int:
        return int(self.samples.shape[1])

    @property
    def last_sample(self) -> int:
        """Index just past this frame's last sample (``first_sample + n_samples``)."""
        return self.first_sample + self.n_samples

    def _header_fields(self) -> tuple[int, int, int, int, int, float, int, int]:
        return (
            self.version,
            self.stream_id,
            self.seq,
            self.first_sample,
            self.fs,
            self.gain,
            self.lead_off,
            self.flags,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EcgFrame):
            return NotImplemented
        return self._header_fields() == other._header_fields() and bool(
            np.array_equal(self.samples, other.samples)
        )

    def __hash__(self) -> int:
        return hash((self._header_fields(), self.samples.shape, self.samples.tobytes()))

    def __repr__(self) -> str:
        # No sample values: frames end up in logs, samples must not (STYLE §8).
        return (
            f"EcgFrame(stream_id={self.stream_id}, seq={self.seq}, "
            f"first_sample={self.first_sample}, fs={self.fs}, gain={self.gain}, "
            f"lead_off={self.lead_off:#06x}, flags={self.flags}, "
            f"n_samples={self.n_samples}, n_leads={self.n_leads}, version={self.version})"
        )


def encode_ecg_frame(frame: EcgFrame) -> bytes:
    """The wire bytes of ``frame`` (header, samples, CRC-32)."""
    if not isinstance(frame, EcgFrame):
        raise ProtocolError(f"expected an EcgFrame, got {type(frame).__name__}")
    # The frame checked itself when built; check again in case it was altered since
    # (object.__setattr__ gets past frozen), so that struct never sees a bad value.
    try:
        samples = _as_frame_samples(frame.samples)
        gain = _as_f32_gain(frame.gain)
        fields = _checked_fields(frame, n_leads=samples.shape[1])
    except ProtocolError as exc:
        raise ProtocolError(f"cannot encode ECG frame: {exc}") from None
    header = _HEADER.pack(
        MAGIC,
        fields["version"],
        KIND_ECG,
        fields["stream_id"],
        fields["seq"],
        fields["first_sample"],
        fields["fs"],
        samples.shape[1],
        samples.shape[0],
        gain,
        fields["lead_off"],
        fields["flags"],
    )
    body = header + samples.astype(_WIRE_INT16, copy=False).tobytes()
    return body + _CRC.pack(zlib.crc32(body))


def decode_ecg_frame(data: bytes | bytearray | memoryview) -> EcgFrame:
    """Parse one frame; any malformed input raises ``ProtocolError`` saying what was wrong.

    The returned samples are a read-only view of ``data`` (no copy).
    """
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)  # a frame must not change under its reader
    elif not isinstance(data, bytes):
        raise ProtocolError(f"an ECG frame is bytes, got {type(data).__name__}")
    size = len(data)
    if size < OVERHEAD_BYTES:
        raise ProtocolError(f"ECG frame needs at least {OVERHEAD_BYTES} bytes, got {size}")
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"ECG frame is {size} bytes; the limit is {MAX_FRAME_BYTES}")
    head = _Header._make(_HEADER.unpack_from(data))
    if head.magic != MAGIC:
        raise ProtocolError(f"ECG frame must start with {MAGIC!r}, got {head.magic!r}")
    if head.version not in SUPPORTED_VERSIONS:
        raise ProtocolError(
            f"ECG frame version {head.version} is not supported; "
            f"supported versions: {_versions_text()}"
        )
    if head.kind not in KINDS:
        known = ", ".join(f"{k} ({name})" for k, name in KINDS.items())
        raise ProtocolError(f"ECG frame kind {head.kind} is unknown; known kinds: {known}")
    where = f"ECG frame (stream {head.stream_id}, seq {head.seq} as read)"
    if not 1 <= head.n_leads <= MAX_LEADS:
        raise ProtocolError(f"{where}: n_leads must be 1-{MAX_LEADS}, got {head.n_leads}")
    if head.n_samples < 1:
        raise ProtocolError(f"{where}: n_samples must be at least 1, got 0")
    end = HEADER_BYTES + 2 * head.n_leads * head.n_samples
    if size != end + _CRC.size:
        raise ProtocolError(
            f"{where}: {head.n_leads} leads x {head.n_samples} samples need "
            f"{end + _CRC.size} bytes, got {size}"
        )
    (crc,) = _CRC.unpack_from(data, end)
    if crc != (expected := zlib.crc32(memoryview(data)[:end])):
        raise ProtocolError(
            f"{where}: CRC-32 mismatch (frame says {crc:#010x}, bytes give {expected:#010x})"
        )
    samples = np.frombuffer(data, _WIRE_INT16, head.n_leads * head.n_samples, HEADER_BYTES)
    try:
        return EcgFrame(
            stream_id=head.stream_id,
            seq=head.seq,
            first_sample=head.first_sample,
            fs=head.fs,
            gain=head.gain,
            lead_off=head.lead_off,
            flags=head.flags,
            samples=samples.reshape(head.n_samples, head.n_leads),
            version=head.version,
        )
    except ProtocolError as exc:
        raise ProtocolError(f"{where}: {str(exc).removeprefix('ECG frame: ')}") from None


def split_ecg_frames(data: bytes | bytearray | memoryview) -> list[bytes]:
    """The wire bytes of each frame in a message that holds one or more frames back to back.

    Frames are self-delimiting (the header gives leads x samples), so a sender may pack several
    into one data-channel message (``pack_ecg_frames``): fewer messages, less per-message
    transport work. Each part is then checked by ``decode_ecg_frame``. Raises ``ProtocolError``
    at the first part whose header cannot be read or whose size overruns the message; the parts
    before it are not returned either (the sender resends what the hub does not ack).
    """
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise ProtocolError(f"ECG frames are bytes, got {type(data).__name__}")
    parts: list[bytes] = []
    offset, size = 0, len(data)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"ECG message is {size} bytes; the limit is {MAX_FRAME_BYTES}")
    while offset < size:
        if data[offset : offset + 2] != MAGIC:
            raise ProtocolError(
                f"ECG frame {len(parts) + 1} of the message must start with {MAGIC!r}, "
                f"got {data[offset : offset + 2]!r}"
            )
        if size - offset < OVERHEAD_BYTES:
            raise ProtocolError(
                f"ECG frame {len(parts) + 1} of the message needs at least {OVERHEAD_BYTES} "
                f"bytes, {size - offset} are left"
            )
        n_leads, n_samples = _LEADS_SAMPLES.unpack_from(data, offset + _LEADS_SAMPLES_AT)
        end = offset + OVERHEAD_BYTES + 2 * n_leads * n_samples
        if end > size:
            raise ProtocolError(
                f"ECG frame {len(parts) + 1} of the message says {n_leads} leads x "
                f"{n_samples} samples ({end - offset} bytes), {size - offset} are left"
            )
        parts.append(data[offset:end])
        offset = end
    if not parts:
        raise ProtocolError("an ECG message holds at least one frame, got 0 bytes")
    return parts


def pack_ecg_frames(frames: Sequence[bytes], limit: int = MAX_FRAME_BYTES) -> list[bytes]:
    """Encoded frames packed, in order, into as few messages of at most ``limit`` bytes as
    they fit (a frame is never split)."""
    messages: list[bytes] = []
    batch: list[bytes] = []
    used = 0
    for frame in frames:
        if batch and used + len(frame) > limit:
            messages.append(b"".join(batch))
            batch, used = [], 0
        batch.append(frame)
        used += len(frame)
    if batch:
        messages.append(b"".join(batch))
    return messages


def frames_from_samples(
    samples: NDArray[np.integer[Any]],
    *,
    stream_id: int,
    fs: int,
    gain: float,
    first_sample: int,
    first_seq: int,
    frame_samples: int,
    lead_off: int = 0,
) -> list[EcgFrame]:
    """Cut an int16 block ``(n_samples, n_leads)`` into consecutive frames of ``frame_samples``.

    Frame ``k`` has ``seq = first_seq + k`` and starts at sample ``first_sample + k *
    frame_samples``; the last frame may be shorter. An empty block gives no frames.
    """
    block = _as_frame_samples(samples, allow_empty=True)
    if isinstance(frame_samples, bool) or not isinstance(frame_samples, int):
        raise ProtocolError(f"frame_samples must be an int, got {type(frame_samples).__name__}")
    most = MAX_SAMPLE_VALUES // block.shape[1]
    if not 1 <= frame_samples <= most:
        raise ProtocolError(
            f"frame_samples must be 1-{most} for {block.shape[1]} leads "
            f"(frames are at most {MAX_FRAME_BYTES} bytes), got {frame_samples}"
        )
    return [
        EcgFrame(
            stream_id=stream_id,
            seq=first_seq + k,
            first_sample=first_sample + start,
            fs=fs,
            gain=gain,
            lead_off=lead_off,
            flags=0,
            samples=block[start : start + frame_samples],
        )
        for k, start in enumerate(range(0, block.shape[0], frame_samples))
    ]


def _versions_text() -> str:
    return ", ".join(str(v) for v in SUPPORTED_VERSIONS)


def _as_frame_samples(samples: object, *, allow_empty: bool = False) -> NDArray[np.int16]:
    """``samples`` as a read-only C-contiguous int16 array, checked, copied only if needed."""
    if not isinstance(samples, np.ndarray):
        raise ProtocolError(f"samples must be a numpy array, got {type(samples).__name__}")
    if samples.ndim != 2:
        raise ProtocolError(
            f"samples must be 2-D (n_samples, n_leads), got {samples.ndim}-D shape {samples.shape}"
        )
    n_samples, n_leads = samples.shape
    if not 1 <= n_leads <= MAX_LEADS:
        raise ProtocolError(f"samples must have 1-{MAX_LEADS} leads (columns), got {n_leads}")
    if n_samples < 1 and not allow_empty:
        raise ProtocolError("samples must hold at least 1 sample (row), got 0")
    if not allow_empty and n_samples * n_leads > MAX_SAMPLE_VALUES:
        raise ProtocolError(
            f"{n_samples} samples x {n_leads} leads exceed the {MAX_FRAME_BYTES}-byte frame "
            f"(at most {MAX_SAMPLE_VALUES} values)"
        )
    if samples.dtype.kind not in "iu":
        raise ProtocolError(f"samples must be integer ADC units (int16), got {samples.dtype}")
    if samples.dtype.itemsize > 2 or samples.dtype == np.uint16:
        low, high = (int(samples.min()), int(samples.max())) if samples.size else (0, 0)
        if low < -32768 or high > 32767:
            raise ProtocolError(f"samples must fit int16 (-32768..32767), got {low}..{high}")
    if (
        samples.dtype == np.int16
        and samples.dtype.isnative
        and samples.flags.c_contiguous
        and not samples.flags.writeable
    ):
        return samples
    owned = np.array(samples, dtype=np.int16, order="C", copy=True)
    owned.flags.writeable = False
    return owned


def _as_f32_gain(gain: object) -> float:
    """``gain`` checked (finite, > 0, fits float32) and rounded to float32 as on the wire."""
    if isinstance(gain, bool) or not isinstance(gain, int | float | np.floating | np.integer):
        raise ProtocolError(f"gain must be a number (ADC units per mV), got {type(gain).__name__}")
    value = float(gain)
    if not (math.isfinite(value) and 0.0 < value <= _F32_MAX):
        raise ProtocolError(f"gain must be finite and > 0 (ADC units per mV), got {value}")
    (rounded,) = _F32.unpack(_F32.pack(value))
    if rounded <= 0.0:  # below float32's smallest subnormal
        raise ProtocolError(f"gain must be > 0 as float32 (ADC units per mV), got {value}")
    return float(rounded)


_INT_FIELDS = (
    ("version", 0, 0xFF),
    ("stream_id", 0, _U32_MAX),
    ("seq", 0, _U64_MAX),
    ("first_sample", 0, _U64_MAX),
    ("fs", MIN_FS_HZ, MAX_FS_HZ),
    ("lead_off", 0, 0xFFFF),
    ("flags", 0, 0xFF),
)


def _checked_fields(frame: EcgFrame, *, n_leads: int) -> dict[str, int]:
    """The integer header fields of ``frame`` as plain ints, each checked against its range."""
    fields: dict[str, int] = {}
    for name, low, high in _INT_FIELDS:
        value = getattr(frame, name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ProtocolError(f"{name} must be an int, got {type(value).__name__}")
        value = int(value)
        if not low <= value <= high:
            unit = " Hz" if name == "fs" else ""
            raise ProtocolError(f"{name} must be {low}-{high}{unit}, got {value}")
        fields[name] = value
    if fields["version"] not in SUPPORTED_VERSIONS:
        raise ProtocolError(
            f"version {fields['version']} is not supported; supported versions: {_versions_text()}"
        )
    if fields["lead_off"] >> n_leads:
        raise ProtocolError(
            f"lead_off {fields['lead_off']:#06x} flags leads beyond the frame's {n_leads} leads "
            f"(bit i = lead i)"
        )
    return fields
