"""ambulink's exceptions. Each class sets ``code``, e.g. ``SignalError.code == "signal_error"``.

AmbulinkError
├── ConfigError          bad settings or command-line values
├── SignalError          bad input to the ECG analysis (shape, NaN/inf, fs out of range)
├── RecordNotFound       a WFDB record or data folder that is not there
└── ProtocolError        malformed wire data (frames, messages)
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
