"""Load and soak scenarios for ambulink, on loopback, bounded in time and count (STYLE §11).

Nothing here is imported by the product or the tests; see ``loadtest/README.md``.
"""
