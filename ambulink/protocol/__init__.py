"""Wire formats shared by hub and tablet (binary ECG frames, JSON messages): sans-I/O, versioned.

Not built yet: see DESIGN §3.2 and the uplink issue.
"""
