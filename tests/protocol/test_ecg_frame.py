"""The binary ECG frame: layout, round trips, validation, and fuzzing (only frames or errors)."""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest
import wfdb
from hypothesis import given, settings
from hypothesis import strategies as st

from ambulink.data import record_path
from ambulink.errors import ProtocolError
from ambulink.protocol.ecg_frame import (
    MAX_FRAME_BYTES,
    SUPPORTED_VERSIONS,
    EcgFrame,
    decode_ecg_frame,
    encode_ecg_frame,
    frames_from_samples,
    pack_ecg_frames,
    split_ecg_frames,
)
from tests.protocol.strategies import MUTATIONS, ecg_frames, mutate, mutated_frames, with_crc

HEADER = struct.Struct("<2sBBIQQHBHfHB")
FUZZ_EXAMPLES = 10_000  # Hypothesis cases of arbitrary bytes
MUTATED_EXAMPLES = 600  # Hypothesis cases of mutated frames; a seeded loop adds 40,000


def frame(**changes: object) -> EcgFrame:
    fields: dict[str, object] = {
        "stream_id": 7,
        "seq": 3,
        "first_sample": 27,
        "fs": 360,
        "gain": 200.0,
        "lead_off": 0b10,
        "flags": 0,
        "samples": np.array([[1, -2], [300, -32768], [32767, 0]], dtype=np.int16),
    }
    fields.update(changes)
    return EcgFrame(**fields)  # type: ignore[arg-type]


def header_bytes(**changes: object) -> bytes:
    """A header for 2 leads x 3 samples, packed independently of the code under test."""
    fields: dict[str, object] = {
        "magic": b"AL",
        "version": 1,
        "kind": 1,
        "stream_id": 7,
        "seq": 3,
        "first_sample": 27,
        "fs": 360,
        "n_leads": 2,
        "n_samples": 3,
        "gain": 200.0,
        "lead_off": 0b10,
        "flags": 0,
    }
    fields.update(changes)
    return HEADER.pack(*fields.values())


SAMPLE_BYTES = struct.pack("<6h", 1, -2, 300, -32768, 32767, 0)  # sample-major: s0L0 s0L1 s1L0...


def wire(**changes: object) -> bytes:
    return with_crc(header_bytes(**changes) + SAMPLE_BYTES)


def test_encodes_the_layout_of_design_3_2_byte_for_byte() -> None:
    assert HEADER.size == 36
    assert encode_ecg_frame(frame()) == wire()


def test_decodes_the_layout_of_design_3_2() -> None:
    decoded = decode_ecg_frame(wire())
    assert decoded == frame()
    assert (decoded.n_samples, decoded.n_leads, decoded.last_sample) == (3, 2, 30)
    assert decoded.samples.dtype == np.int16
    assert decoded.samples.flags.c_contiguous and not decoded.samples.flags.writeable
    assert decoded.samples[1].tolist() == [300, -32768]


@given(ecg_frames())
def test_round_trip(original: EcgFrame) -> None:
    data = encode_ecg_frame(original)
    decoded = decode_ecg_frame(data)
    assert decoded == original
    assert encode_ecg_frame(decoded) == data
    assert np.array_equal(decoded.samples, original.samples)
    assert len(data) == 40 + 2 * original.n_samples * original.n_leads


def test_gain_is_kept_as_the_float32_the_wire_carries() -> None:
    made = frame(gain=0.1)
    assert made.gain == float(np.float32(0.1)) != 0.1
    assert decode_ecg_frame(encode_ecg_frame(made)) == made


def test_frames_compare_by_value_and_hash_alike() -> None:
    assert frame() == frame() and hash(frame()) == hash(frame())
    other = frame(samples=np.array([[1, -2], [300, -32768], [32767, 1]], dtype=np.int16))
    assert frame() != other
    assert frame() != frame(seq=4)


def test_repr_shows_no_samples() -> None:
    text = repr(frame(samples=np.full((3, 2), 12345, dtype=np.int16)))
    assert "12345" not in text and "n_samples=3" in text and "seq=3" in text


def test_frame_owns_its_samples() -> None:
    source = np.array([[1, 2], [3, 4]], dtype=np.int16)
    made = frame(samples=source, lead_off=0)
    source[0, 0] = 99
    assert made.samples[0, 0] == 1
    with pytest.raises(ValueError, match="read-only"):
        made.samples[0, 0] = 5


def test_accepts_wider_integer_arrays_that_fit_int16() -> None:
    made = frame(samples=np.array([[1, 2]], dtype=np.int64), lead_off=0)
    assert made.samples.dtype == np.int16 and made.samples.tolist() == [[1, 2]]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"samples": np.zeros((3, 2))}, "samples must be integer ADC units (int16), got float64"),
        ({"samples": np.zeros(3, dtype=np.int16)}, "samples must be 2-D"),
        ({"samples": np.zeros((0, 2), dtype=np.int16)}, "at least 1 sample"),
        ({"samples": np.zeros((2, 19), dtype=np.int16), "lead_off": 0}, "1-18 leads"),
        (
            {"samples": np.array([[40000, 0]])},
            "samples must fit int16 (-32768..32767), got 0..40000",
        ),
        ({"samples": np.zeros((3000, 12), dtype=np.int16), "lead_off": 0}, "exceed the 65536-byte"),
        ({"samples": [[1, 2]]}, "samples must be a numpy array, got list"),
        ({"fs": 50}, "fs must be 100-2000 Hz, got 50"),
        ({"fs": 360.0}, "fs must be an int, got float"),
        ({"seq": -1}, "seq must be 0-18446744073709551615, got -1"),
        ({"stream_id": 2**32}, "stream_id must be 0-4294967295"),
        ({"gain": 0.0}, "gain must be finite and > 0"),
        ({"gain": float("nan")}, "gain must be finite and > 0"),
        ({"gain": 1e39}, "gain must be finite and > 0"),
        ({"gain": 1e-50}, "gain must be > 0 as float32"),
        ({"gain": "200"}, "gain must be a number"),
        ({"lead_off": 0b100}, "lead_off 0x0004 flags leads beyond the frame's 2 leads"),
        ({"flags": 256}, "flags must be 0-255, got 256"),
        ({"version": 2}, "version 2 is not supported; supported versions: 1"),
    ],
)
def test_building_a_bad_frame_says_what_is_wrong(changes: dict[str, object], words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        frame(**changes)
    assert words in str(caught.value)


def test_encode_checks_a_frame_altered_after_it_was_built() -> None:
    made = frame()
    object.__setattr__(made, "fs", 70_000)  # would make struct.error without the check
    with pytest.raises(ProtocolError, match="cannot encode ECG frame: fs must be 100-2000 Hz"):
        encode_ecg_frame(made)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"AL\x01", "ECG frame needs at least 40 bytes, got 3"),
        (b"\x00" * (MAX_FRAME_BYTES + 1), "ECG frame is 65537 bytes; the limit is 65536"),
        (wire(magic=b"XY"), "ECG frame must start with b'AL', got b'XY'"),
        (wire(version=2), "ECG frame version 2 is not supported; supported versions: 1"),
        (wire(kind=9), "ECG frame kind 9 is unknown; known kinds: 1 (ECG)"),
        (wire(n_leads=0), "n_leads must be 1-18, got 0"),
        (wire(n_leads=19), "n_leads must be 1-18, got 19"),
        (wire(n_samples=0), "n_samples must be at least 1, got 0"),
        (wire(n_samples=4), "2 leads x 4 samples need 56 bytes, got 52"),
        (wire()[:-1], "2 leads x 3 samples need 52 bytes, got 51"),
        (wire() + b"\x00", "need 52 bytes, got 53"),
        (wire()[:-4] + b"\x00\x00\x00\x00", "stream 7, seq 3 as read): CRC-32 mismatch"),
        (wire(fs=99), "fs must be 100-2000 Hz, got 99"),
        (wire(gain=float("nan")), "gain must be finite and > 0"),
        (wire(gain=-200.0), "gain must be finite and > 0 (ADC units per mV), got -200.0"),
        (wire(lead_off=0b101), "lead_off 0x0005 flags leads beyond the frame's 2 leads"),
        ("AL", "an ECG frame is bytes, got str"),
    ],
)
def test_decoding_bad_bytes_says_what_is_wrong(data: bytes, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_ecg_frame(data)
    assert words in str(caught.value)


def test_unknown_version_names_the_supported_ones() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_ecg_frame(wire(version=7))
    assert f"supported versions: {', '.join(map(str, SUPPORTED_VERSIONS))}" in str(caught.value)


def test_decoded_samples_do_not_change_with_a_mutable_source() -> None:
    source = bytearray(wire())
    decoded = decode_ecg_frame(source)
    source[36] = 0x7F
    assert decoded.samples[0, 0] == 1


def assert_frame_or_protocol_error(data: bytes) -> None:
    try:
        decoded = decode_ecg_frame(data)
    except ProtocolError as exc:
        assert str(exc)
        return
    assert isinstance(decoded, EcgFrame)
    assert encode_ecg_frame(decoded) == data  # whatever decodes is exactly what was sent


@settings(max_examples=FUZZ_EXAMPLES)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=200).map(lambda tail: b"AL\x01\x01" + tail),
    )
)
def test_arbitrary_bytes_give_a_frame_or_a_protocol_error(data: bytes) -> None:
    assert_frame_or_protocol_error(data)


@settings(max_examples=MUTATED_EXAMPLES)
@given(mutated_frames())
def test_mutated_frames_give_a_frame_or_a_protocol_error(data: bytes) -> None:
    assert_frame_or_protocol_error(data)


CHECKS = (
    "needs at least",
    "must start with b'AL'",
    "version",
    "kind",
    "n_leads must be",
    "n_samples must be",
    "samples need",
    "CRC-32 mismatch",
    "fs must be",
    "gain must be",
    "lead_off",
)


def test_many_more_mutated_frames_reach_every_check() -> None:
    """A seeded loop, cheaper per case than Hypothesis: 40,000 more mutated frames, and proof
    that the fuzzing is not vacuous (every check fires and some mutations still decode)."""
    rng = np.random.default_rng(5)
    valid = [
        encode_ecg_frame(frame()),
        encode_ecg_frame(frame(samples=np.zeros((40, 12), dtype=np.int16), lead_off=0)),
    ]
    fired = dict.fromkeys(CHECKS, 0)
    decoded = 0
    for case in range(40_000):
        data = valid[case % 2]
        for action in rng.choice(MUTATIONS, size=int(rng.integers(1, 3))):
            data = mutate(data, rng, str(action))
        try:
            assert_frame_or_protocol_error(data)
            decode_ecg_frame(data)
            decoded += 1
        except ProtocolError as exc:
            fired.update({check: fired[check] + 1 for check in CHECKS if check in str(exc)})
    assert decoded > 1000
    assert all(fired.values()), fired


def test_frames_from_samples_of_a_real_record_decode_back_to_it() -> None:
    rec = wfdb.rdrecord(record_path("mitdb/100"), physical=False, sampto=360 * 300)
    gain = float(rec.adc_gain[0])
    assert rec.adc_gain == [gain, gain]
    # The frame has no baseline field: samples are ADC units with 0 = 0 mV.
    adc = (rec.d_signal - np.asarray(rec.baseline)).astype(np.int16)
    frames = frames_from_samples(
        adc,
        stream_id=3,
        fs=int(rec.fs),
        gain=gain,
        first_sample=1000,
        first_seq=50,
        frame_samples=9,  # 25 ms at 360 Hz
    )
    decoded = [decode_ecg_frame(encode_ecg_frame(f)) for f in frames]
    assert decoded == frames
    assert [f.seq for f in decoded] == list(range(50, 50 + len(frames)))
    assert [f.first_sample for f in decoded] == list(range(1000, 1000 + len(adc), 9))
    assert all(a.last_sample == b.first_sample for a, b in itertools.pairwise(decoded))
    joined = np.concatenate([f.samples for f in decoded])
    assert np.array_equal(joined, adc) and len(joined) == 108_000
    physical = wfdb.rdrecord(record_path("mitdb/100"), sampto=360 * 300).p_signal
    assert np.allclose(joined / decoded[0].gain, physical, atol=1e-9)


def test_frames_from_samples_keeps_a_short_last_frame_and_copies_the_input() -> None:
    block = np.arange(22, dtype=np.int16).reshape(11, 2)
    frames = frames_from_samples(
        block,
        stream_id=0,
        fs=500,
        gain=1000.0,
        first_sample=0,
        first_seq=0,
        frame_samples=4,
        lead_off=0b01,
    )
    assert [f.n_samples for f in frames] == [4, 4, 3]
    assert all(f.lead_off == 1 and f.n_leads == 2 for f in frames)
    block[0, 0] = 99
    assert frames[0].samples[0, 0] == 0


def test_frames_from_samples_of_an_empty_block_is_empty() -> None:
    empty = np.zeros((0, 12), dtype=np.int16)
    kwargs = {"stream_id": 0, "fs": 500, "gain": 1.0, "first_sample": 0, "first_seq": 0}
    assert frames_from_samples(empty, frame_samples=20, **kwargs) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame_samples", "words"),
    [(0, "frame_samples must be 1-2729 for 12 leads"), (3000, "got 3000"), (2.5, "an int")],
)
def test_frames_from_samples_rejects_bad_frame_sizes(frame_samples: object, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        frames_from_samples(
            np.zeros((10, 12), dtype=np.int16),
            stream_id=0,
            fs=500,
            gain=1.0,
            first_sample=0,
            first_seq=0,
            frame_samples=frame_samples,  # type: ignore[arg-type]
        )


def _real_frames(count: int) -> list[bytes]:
    rec = wfdb.rdrecord(record_path("mitdb/100"), physical=False, sampto=360 * 10)
    adc = (rec.d_signal - np.asarray(rec.baseline)).astype(np.int16)
    frames = frames_from_samples(
        adc, stream_id=1, fs=360, gain=200.0, first_sample=0, first_seq=0, frame_samples=14
    )
    return [encode_ecg_frame(f) for f in frames[:count]]


def test_packed_frames_split_back_into_the_same_frames_in_order() -> None:
    frames = _real_frames(40)
    limit = 5 * len(frames[0]) + 10  # five frames fit, a sixth does not
    messages = pack_ecg_frames(frames, limit)
    assert len(messages) == 8
    assert all(len(m) <= limit for m in messages)
    parts = [part for message in messages for part in split_ecg_frames(message)]
    assert parts == frames
    assert [decode_ecg_frame(p).seq for p in parts] == list(range(40))


def test_a_single_frame_is_a_message_of_one() -> None:
    (frame,) = _real_frames(1)
    assert pack_ecg_frames([frame]) == [frame]
    assert split_ecg_frames(frame) == [frame]
    assert pack_ecg_frames([]) == []


@pytest.mark.parametrize(
    ("cut", "words"),
    [
        (lambda m: m[:-3], "are left"),
        (lambda m: m + b"AL", "needs at least"),
        (lambda m: b"", "0 bytes"),
    ],
)
def test_a_truncated_or_padded_message_says_which_frame_is_wrong(cut: object, words: str) -> None:
    message = b"".join(_real_frames(3))
    with pytest.raises(ProtocolError, match=words):
        split_ecg_frames(cut(message))  # type: ignore[operator]


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_split_into_frames_or_a_protocol_error(data: bytes) -> None:
    try:
        parts = split_ecg_frames(data)
    except ProtocolError:
        return
    assert b"".join(parts) == data
    for part in parts:
        assert_frame_or_protocol_error(part)
