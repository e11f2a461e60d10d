"""Hypothesis strategies for valid ECG frames and their mutations."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ambulink.protocol.ecg_frame import EcgFrame, encode_ecg_frame


@st.composite
def ecg_frames(draw: st.DrawFn, max_leads: int = 12, max_samples: int = 40) -> EcgFrame:
    n_leads = draw(st.integers(1, max_leads))
    n_samples = draw(st.integers(1, max_samples))
    samples = draw(hnp.arrays(np.int16, (n_samples, n_leads)))
    return EcgFrame(
        stream_id=draw(st.integers(0, 2**32 - 1)),
        seq=draw(st.integers(0, 2**64 - 1)),
        first_sample=draw(st.integers(0, 2**64 - 1)),
        fs=draw(st.integers(100, 2000)),
        gain=draw(st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False)),
        lead_off=draw(st.integers(0, (1 << min(n_leads, 16)) - 1)),
        flags=draw(st.integers(0, 255)),
        samples=samples,
    )


def with_crc(body: bytes) -> bytes:
    """``body`` followed by a correct CRC-32, so that a mutation reaches the field checks."""
    return body + struct.pack("<I", zlib.crc32(body))


@st.composite
def frame_bytes(draw: st.DrawFn) -> bytes:
    """A valid frame's bytes, cheaply: samples come from a seeded generator, not Hypothesis."""
    n_leads = draw(st.integers(1, 12))
    n_samples = draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frame = EcgFrame(
        stream_id=draw(st.integers(0, 2**32 - 1)),
        seq=draw(st.integers(0, 2**64 - 1)),
        first_sample=draw(st.integers(0, 2**64 - 1)),
        fs=draw(st.integers(100, 2000)),
        gain=200.0,
        lead_off=0,
        flags=0,
        samples=rng.integers(-32768, 32768, (n_samples, n_leads)).astype(np.int16),
    )
    return encode_ecg_frame(frame)


MUTATIONS = ("flip", "truncate", "extend", "header", "header_crc")


def mutate(data: bytes, rng: np.random.Generator, action: str) -> bytes:
    """One mutation: a bit flip, truncation, extension, or a rewritten header byte (with
    ``header_crc`` the CRC is recomputed, so the mutation reaches the checks behind it)."""
    out = bytearray(data)
    if action == "flip" and out:
        bit = int(rng.integers(0, 8 * len(out)))
        out[bit // 8] ^= 1 << (bit % 8)
    elif action == "truncate":
        del out[int(rng.integers(0, len(out) + 1)) :]
    elif action == "extend":
        out += rng.bytes(int(rng.integers(1, 65)))
    elif out:
        out[int(rng.integers(0, min(len(out), 36)))] = int(rng.integers(0, 256))
        if action == "header_crc" and len(out) >= 4:
            out = bytearray(with_crc(bytes(out[:-4])))
    return bytes(out)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid frame's bytes after 1-4 random mutations."""
    data = draw(frame_bytes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for action in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4)):
        data = mutate(data, rng, action)
    return data
