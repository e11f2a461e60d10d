"""The tablet agent: monitor source, camera/mic, WebRTC uplink, store-and-forward, reconnection.

Not built yet: see DESIGN §3.3 and the uplink issue.
"""
