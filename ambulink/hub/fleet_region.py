"""The default demo region: 13 units and 15 hospitals around a city (made-up names and places
near 52.09 N, 5.12 E). ``AMBULINK_FLEET`` names a JSON file to replace it (``FleetConfig``)."""

from __future__ import annotations

from pathlib import Path

from ambulink.hub.fleet import FleetConfig, Hospital

CENTRE = (52.09, 5.12)

UNITS = tuple(f"amb-{i}" for i in range(1, 14))

HOSPITALS = (
    Hospital("h-central", "Central University Hospital", 52.087, 5.179, True, True),
    Hospital("h-west", "West General", 52.094, 5.062, True, False),
    Hospital("h-north", "North Community Hospital", 52.141, 5.108, False, True),
    Hospital("h-south", "South Medical Centre", 52.041, 5.124, True, True),
    Hospital("h-east", "East Regional", 52.101, 5.238, False, False),
    Hospital("h-lake", "Lakeside Clinic", 52.158, 5.021, False, False),
    Hospital("h-river", "Riverside Hospital", 52.023, 5.041, False, True),
    Hospital("h-hill", "Hillcrest Hospital", 52.062, 5.281, True, False),
    Hospital("h-park", "Parkview Hospital", 52.121, 5.162, False, False),
    Hospital("h-harbour", "Harbour Hospital", 52.005, 5.196, False, False),
    Hospital("h-forest", "Forest Edge Hospital", 52.181, 5.244, False, True),
    Hospital("h-mill", "Mill Road Hospital", 52.072, 4.981, False, False),
    Hospital("h-canal", "Canal Street Hospital", 52.112, 5.095, False, False),
    Hospital("h-meadow", "Meadow Hospital", 51.985, 5.102, False, False),
    Hospital("h-heath", "Heath Regional", 52.209, 5.129, True, False),
)

DEFAULT_FLEET = FleetConfig(UNITS, HOSPITALS)


def fleet_config(path: Path | None) -> FleetConfig:
    """The configured fleet (``path``, from ``AMBULINK_FLEET``) or the default region."""
    return DEFAULT_FLEET if path is None else FleetConfig.load(path)
