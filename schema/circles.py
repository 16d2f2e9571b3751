"""Which living circles an outlet serves: the one membership rule, shared by the registry import and the demo city.

A living circle is centred on a community and reaches about a 15-minute walk.
An outlet serves its own community's circle and every other circle whose
centre is within `walk_km` of it (`Settings.circle_walk_km`, default
`WALK_KM`), so an outlet between two close circles counts in both. Stock of
such an outlet counts fully in each circle it serves and once in any total
above circles (district, city): see `schema/queries.sql`, `area_totals`.

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

#: A 15-minute walk, in km: the default reach of a circle (the city's plan: "about 1 km").
WALK_KM = 1.0
EARTH_RADIUS_KM = 6371.0088


class Centre(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def center_lat(self) -> float: ...
    @property
    def center_lon(self) -> float: ...


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two WGS84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def circles_within(lat: float, lon: float, circles: Iterable[Centre], radius_km: float) -> tuple[str, ...]:
    """Ids of the circles whose centre is within `radius_km` (inclusive) of the point, sorted."""
    # Great-circle distance is never less than the latitude difference: a cheap, exact pre-filter.
    max_dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    return tuple(
        sorted(
            c.id
            for c in circles
            if abs(c.center_lat - lat) <= max_dlat and haversine_km(lat, lon, c.center_lat, c.center_lon) <= radius_km
        )
    )


def served_circles(
    lat: float, lon: float, home_circle: str, circles: Iterable[Centre], walk_km: float = WALK_KM
) -> tuple[str, ...]:
    """The circles an outlet at (lat, lon) in a community of `home_circle` serves: the home circle first."""
    return (home_circle, *(c for c in circles_within(lat, lon, circles, walk_km) if c != home_circle))
