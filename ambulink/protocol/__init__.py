"""Wire formats shared by hub and tablet (DESIGN §3.2): pure functions, no I/O, versioned.

- ``ecg_frame``: the binary ECG frame (``EcgFrame``, ``encode_ecg_frame``, ``decode_ecg_frame``,
  ``frames_from_samples``): 36-byte little-endian header, int16 samples, CRC-32.
- ``messages``: the JSON messages (``StreamOpen``, ``Vitals``, ``Heartbeat``, ``Ack``, ``Resume``,
  ``Missing``, ``Status``, ``Position``, ``Link``, ``ErrorMessage``), pydantic models discriminated
  by ``type`` and carrying ``v``; ``decode_message`` and ``encode_message``.

Decoders turn any malformed input into ``ProtocolError`` saying what was expected and what came;
they raise nothing else. Imports here: numpy, pydantic, the standard library, ``ambulink.errors``.
"""
