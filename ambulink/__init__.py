"""ambulink: real-time telemetry and consult software for emergency medical services."""

__version__ = "0.1.0"
