"""Consult rooms: membership, roles, capacity, media forwarding between participants.

Not built yet: see DESIGN §3.5 and the consult-rooms issue.
"""
