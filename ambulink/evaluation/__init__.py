"""Scoring the ECG detectors against annotated records (ANSI/AAMI EC57) and benchmarking them.

records.py reads WFDB records (the only wfdb user here); reference.py turns annotations into
reference beats, excluded spans and rhythm episodes; matching.py, beat_scoring.py and
rhythm_scoring.py are the pure scoring; evaluate.py runs a detector over records; report.py and
bench_report.py format; bench.py measures throughput against peers; commands.py wires the
``ambulink eval`` and ``ambulink bench`` commands.
"""
