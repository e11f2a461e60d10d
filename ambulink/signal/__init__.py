"""Pure streaming ECG analysis: fed chunks, returns events. No asyncio, no I/O, no clock.

Units: samples (int, index since stream start), Hz, mV, ms. Batch entry points
(``qrs.detect``, ``beats.classify``, ``rhythm.detect_episodes``) only wrap the streaming objects.
"""
