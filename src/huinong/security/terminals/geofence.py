"""Geofences: where a terminal is allowed to be, as pure functions.

A geofence is a circle: a centre and a radius in whole metres. A terminal reports its position
in the ``X-Location`` header of a signed request; a position farther from the centre than the
radius is refused (and leaves an alert).

Coordinates are WGS-84 degrees. They are **stored as integer micro-degrees** (1e-6 degree,
about 0.11 m of latitude): exact, comparable and indexable on every database, with no float
column anywhere. Callers write them as decimal strings (``"30.274084"``); more than six
decimals are rounded half-up to the micro-degree, which is far below a phone's GPS error.

The distance is the haversine great-circle distance on a sphere of the Earth's mean radius
(IUGG, 6,371,008.8 m). Its error against the ellipsoid is under 0.5 %, i.e. under 5 m on a
1 km fence, well inside GPS noise; it is computed in floating point, which is fine for a
distance (this is not money) and never stored as a float.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

EARTH_MEAN_RADIUS_METRES = 6_371_008.8
MICRO = 1_000_000
MAX_LATITUDE_MICRO = 90 * MICRO
MAX_LONGITUDE_MICRO = 180 * MICRO
# A fence wider than this is no fence; a narrower one than a GPS fix can tell apart is a trap.
MIN_RADIUS_METRES = 10
MAX_RADIUS_METRES = 1_000_000

_DECIMAL_DEGREES = re.compile(r"^[+-]?[0-9]{1,3}(\.[0-9]{1,12})?$")


@dataclass(frozen=True)
class Point:
    latitude_micro: int
    longitude_micro: int

    def __post_init__(self) -> None:
        if not -MAX_LATITUDE_MICRO <= self.latitude_micro <= MAX_LATITUDE_MICRO:
            raise ValueError("latitude must be between -90 and 90 degrees")
        if not -MAX_LONGITUDE_MICRO <= self.longitude_micro <= MAX_LONGITUDE_MICRO:
            raise ValueError("longitude must be between -180 and 180 degrees")

    def text(self) -> str:
        """``"30.274084,120.155070"``: the form ``X-Location`` takes."""
        return f"{micro_to_text(self.latitude_micro)},{micro_to_text(self.longitude_micro)}"


@dataclass(frozen=True)
class Fence:
    centre: Point
    radius_metres: int

    def __post_init__(self) -> None:
        if not MIN_RADIUS_METRES <= self.radius_metres <= MAX_RADIUS_METRES:
            raise ValueError(
                f"the radius must be between {MIN_RADIUS_METRES} and {MAX_RADIUS_METRES} metres"
            )

    def contains(self, point: Point) -> bool:
        return distance_metres(self.centre, point) <= self.radius_metres


def degrees_to_micro(text: str) -> int:
    """``"30.2740845"`` -> ``30274085``; ``ValueError`` for anything but plain decimal degrees
    (no exponent, no ``nan``, at most three integer digits)."""
    text = text.strip()
    if not _DECIMAL_DEGREES.match(text):
        raise ValueError("degrees are written as a decimal number such as 30.274084")
    return int((Decimal(text) * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def micro_to_text(value: int) -> str:
    """``30274084`` -> ``"30.274084"`` (exactly six decimals)."""
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), MICRO)
    return f"{sign}{whole}.{fraction:06d}"


def parse_point(latitude: str, longitude: str) -> Point:
    return Point(degrees_to_micro(latitude), degrees_to_micro(longitude))


def parse_location(header: str) -> Point:
    """The ``X-Location`` header, ``"<latitude>,<longitude>"`` in decimal degrees."""
    parts = header.split(",")
    if len(parts) != 2:
        raise ValueError("a location is '<latitude>,<longitude>' in decimal degrees")
    return parse_point(parts[0], parts[1])


def distance_metres(a: Point, b: Point) -> float:
    """Great-circle (haversine) distance between two points, in metres."""
    lat1 = math.radians(a.latitude_micro / MICRO)
    lat2 = math.radians(b.latitude_micro / MICRO)
    dlat = lat2 - lat1
    dlon = math.radians((b.longitude_micro - a.longitude_micro) / MICRO)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    # min(): rounding can push h a hair above 1 for antipodal points, and asin(>1) raises.
    return 2 * EARTH_MEAN_RADIUS_METRES * math.asin(math.sqrt(min(1.0, h)))
