"""ambulink's exceptions. Each class sets ``code``, e.g. ``SignalError.code == "signal_error"``.

AmbulinkError
├── ConfigError          bad settings or command-line values
├── SignalError          bad input to the ECG analysis (shape, NaN/inf, fs out of range)
├── RecordNotFound       a WFDB record or data folder that is not there
└── ProtocolError        malformed wire data (frames, messages)

Parts add their own subclasses next to the code that raises them, e.g. the hub's
``StorageUnavailable``, ``UnknownCase`` (``ambulink.hub.store``), ``BusUnavailable``
(``ambulink.hub.bus``), ``InvalidToken``, ``Forbidden`` (``ambulink.hub.tokens``) and the
tablet's ``BufferFull`` (``ambulink.ambulance_client.buffer``); ``ambulink.hub.http_errors``
maps them to HTTP statuses.
"""

from __future__ import annotations


class AmbulinkError(Exception):
    """Root of every deliberate ambulink failure; ``code`` is stable for clients to act on."""

    code = "ambulink_error"


class ConfigError(AmbulinkError):
    code = "config_error"


class SignalError(AmbulinkError, ValueError):
    code = "signal_error"


class RecordNotFound(AmbulinkError, FileNotFoundError):
    code = "record_not_found"


class ProtocolError(AmbulinkError, ValueError):
    code = "protocol_error"
