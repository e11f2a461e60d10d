"""The hub: FastAPI + aiortc server for uplinks, cases, alarms, fleet, REST and WebSocket APIs.

Not built yet: see DESIGN §1 and the uplink issue.
"""
