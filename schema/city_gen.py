"""Synthetic cities of any size, for scale tests and benchmarks (pure: no database, no I/O).

SYNTHETIC DATA. Nothing here is a real outlet, shop, supplier or place; the
sizes follow the demo city's (`schema.demo_city`, from Suihua's Beilin
pilot): about 47 residents per commercial outlet, four communities per living
circle, the same mix of business types. A Suihua-size city is
`build_city(75_000, 120)` (3.56 M residents by default); a province is
`build_city(300_000, 500)`.

`build_city(outlets, circles, seed=...)` is deterministic: the same arguments
give the same city, field for field (only `random.Random(seed)` is drawn
from). It takes about 2 s for 75,000 outlets and 8 s for 300,000.

Layout. Circles are grouped into districts of `CIRCLES_PER_DISTRICT` (a
county-level city, a county, an urban district): each district is a town
whose circle centres sit on a hexagonal grid `CIRCLE_SPACING_KM` apart, the
towns on a coarse grid `DISTRICT_SPACING_KM` apart around Suihua's centre.
Each circle has `COMMUNITIES_PER_CIRCLE` communities (the first at its centre,
the others within `COMMUNITY_SPREAD_KM`), populations summing exactly to the
city's; outlets of each business type are shared among communities by
population (with noise) and placed within `OUTLET_SPREAD_KM` of their
community. Every outlet serves the circles given by the one membership rule
(`schema.circles.served_circles`): its community's circle, plus every other
centre within a walk; a grid of cells a walk wide only narrows which centres
are measured, it never changes the answer.

Ownership. The demo city's five chains (`schema.demo_city.CHAINS`) own the
same shares of their business types city-wide; every other outlet of a type
that carries a necessity belongs to its district's independent merchants
(one supplier per district); types that carry none belong to `UNAFFILIATED`.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from schema.catalogue import BUSINESS_TYPES, CARRIES
from schema.circles import WALK_KM, served_circles
from schema.demo_city import (
    _KM_PER_DEG_LAT,
    CENTRE_LAT,
    CENTRE_LON,
    CHAINS,
    COMMUNITIES_PER_CIRCLE,
    COMMUNITY_SPREAD_KM,
    OUTLET_SPREAD_KM,
    OUTLETS_BY_TYPE,
    TOTAL_OUTLETS,
    TOTAL_POPULATION,
    UNAFFILIATED,
    Circle,
    Community,
    DemoCity,
    Outlet,
    Supplier,
    _apportion,
    _in_disc,
    _offset,
)

#: Residents per outlet in the demo district (316,000 / 6,668 ≈ 47.4): the default population.
RESIDENTS_PER_OUTLET = TOTAL_POPULATION / TOTAL_OUTLETS
#: Suihua has ten county-level areas for ~120 circles.
CIRCLES_PER_DISTRICT = 12
CIRCLE_SPACING_KM = 1.8  # as in the demo city: neighbouring circles share the outlets between them
DISTRICT_SPACING_KM = 30.0
#: Largest city the id formats and the layout are meant for.
MAX_OUTLETS = 5_000_000

_DISTRICT_WORDS = "东西南北中新安平和兴康宁永丰庆明华昌盛通"


@dataclass(frozen=True, slots=True)
class GeneratedCity(DemoCity):
    """A generated city: the demo city's shape plus the district of every circle."""

    district_of: Mapping[str, str]  # circle id -> district name

    @property
    def districts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.district_of.values()))


def default_population(outlets: int) -> int:
    """Residents of a city of `outlets` outlets at the demo city's density (75,000 outlets: ~3.56 M)."""
    return round(outlets * RESIDENTS_PER_OUTLET)


def _hex_points(count: int, spacing_km: float) -> list[tuple[float, float]]:
    """The `count` points of a hexagonal lattice nearest the origin, as (east, north) km, centre first."""
    rings = 1
    while 3 * rings * (rings + 1) + 1 < count:
        rings += 1
    points = []
    for q in range(-rings, rings + 1):
        for r in range(-rings, rings + 1):
            if abs(q + r) <= rings:
                points.append((spacing_km * (q + r / 2), spacing_km * r * math.sqrt(3) / 2))
    points.sort(key=lambda p: (round(p[0] ** 2 + p[1] ** 2, 6), math.atan2(p[1], p[0])))
    return points[:count]


def _district_name(d: int) -> str:
    words = _DISTRICT_WORDS
    return f"{words[d % len(words)]}{words[(7 * d + 3) % len(words)]}区{d + 1:03d}"


class _CircleIndex:
    """The circles near a point: a grid of cells at least a walk wide, so a 3x3 block holds every centre
    within a walk. Only narrows the candidates of `served_circles`; the rule decides."""

    def __init__(self, circles: list[Circle], walk_km: float) -> None:
        top = max(abs(c.center_lat) for c in circles) + 1.0
        self._dlat = walk_km / _KM_PER_DEG_LAT
        self._dlon = walk_km / (_KM_PER_DEG_LAT * math.cos(math.radians(min(top, 89.0))))
        self._cells: dict[tuple[int, int], list[Circle]] = defaultdict(list)
        for c in circles:
            self._cells[self._cell(c.center_lat, c.center_lon)].append(c)

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / self._dlat), math.floor(lon / self._dlon)

    def near(self, lat: float, lon: float) -> Iterator[Circle]:
        y, x = self._cell(lat, lon)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yield from self._cells.get((y + dy, x + dx), ())


def build_city(
    outlets: int,
    circles: int,
    *,
    seed: int = 1,
    population: int | None = None,
    walk_km: float = WALK_KM,
    progress: Callable[[int, int], None] | None = None,
) -> GeneratedCity:
    """A synthetic city of `outlets` outlets in `circles` living circles; same arguments, same city.

    `population` defaults to `default_population(outlets)`. `progress(done, total)` is called every
    10,000 outlets. Raises ValueError for sizes the layout cannot hold (fewer outlets than
    communities, no circles, more than `MAX_OUTLETS`).
    """
    if circles < 1:
        raise ValueError("a city needs at least one circle")
    if not circles * COMMUNITIES_PER_CIRCLE <= outlets <= MAX_OUTLETS:
        raise ValueError(
            f"outlets must be between {circles * COMMUNITIES_PER_CIRCLE:,} (one per community) and {MAX_OUTLETS:,}"
        )
    residents = default_population(outlets) if population is None else population
    if residents < 0:
        raise ValueError("population must not be negative")
    rng = random.Random(f"baogong-city:{seed}:{outlets}:{circles}:{residents}")
    circle_list, district_of = _build_circles(rng, circles)
    communities = _build_communities(rng, circle_list, residents)
    districts = list(dict.fromkeys(district_of.values()))
    independents = {d: f"I{i + 1:03d}" for i, d in enumerate(districts)}
    suppliers = [Supplier(c.supplier_id, c.name.replace("北林区", ""), c.kind, True) for c in CHAINS]
    suppliers += [Supplier(independents[d], f"{d}个体商户", "independent", True) for d in districts]
    suppliers.append(Supplier(UNAFFILIATED, "未接入商户（不经营必需品）", "unaffiliated", False))
    outlet_list = _build_outlets(
        rng, outlets, circle_list, communities, district_of, independents, walk_km, progress or (lambda d, t: None)
    )
    return GeneratedCity(
        seed=seed,
        circles=tuple(circle_list),
        communities=tuple(communities),
        suppliers=tuple(suppliers),
        outlets=tuple(outlet_list),
        district_of=district_of,
    )


def _build_circles(rng: random.Random, count: int) -> tuple[list[Circle], dict[str, str]]:
    n_districts = math.ceil(count / CIRCLES_PER_DISTRICT)
    per_district = _apportion(count, [1.0] * n_districts)
    towns = _hex_points(n_districts, DISTRICT_SPACING_KM)
    width = max(3, len(str(count)))
    circles: list[Circle] = []
    district_of: dict[str, str] = {}
    for d, (n, (town_e, town_n)) in enumerate(zip(per_district, towns, strict=True)):
        district = _district_name(d)
        for east, north in _hex_points(n, CIRCLE_SPACING_KM):
            cid = f"C{len(circles) + 1:0{width}d}"
            lat, lon = _offset(
                CENTRE_LAT,
                CENTRE_LON,
                town_e + east + rng.uniform(-0.2, 0.2),
                town_n + north + rng.uniform(-0.2, 0.2),
            )
            circles.append(
                Circle(
                    id=cid,
                    name=f"{district}·第{len(circles) + 1}生活圈",
                    center_lat=lat,
                    center_lon=lon,
                    owner=f"{cid}社区党委（示例圈主）",
                    team=f"{cid}生活圈应急保供队",
                )
            )
            district_of[cid] = district
    return circles, district_of


def _build_communities(rng: random.Random, circles: list[Circle], residents: int) -> list[Community]:
    weights = [rng.uniform(0.6, 1.4) for _ in range(len(circles) * COMMUNITIES_PER_CIRCLE)]
    populations = _apportion(residents, weights) if residents else [0] * len(weights)
    communities = []
    for i, circle in enumerate(circles):
        for j in range(COMMUNITIES_PER_CIRCLE):
            east, north = (0.0, 0.0) if j == 0 else _in_disc(rng, COMMUNITY_SPREAD_KM)
            lat, lon = _offset(circle.center_lat, circle.center_lon, east, north)
            communities.append(
                Community(
                    id=f"{circle.id}-{j + 1}",
                    name=f"{circle.id}第{j + 1}社区",
                    street_office=f"{circle.id}街道",
                    population=populations[i * COMMUNITIES_PER_CIRCLE + j],
                    circle_id=circle.id,
                    lat=lat,
                    lon=lon,
                )
            )
    return communities


def _build_outlets(
    rng: random.Random,
    total: int,
    circles: list[Circle],
    communities: list[Community],
    district_of: Mapping[str, str],
    independents: Mapping[str, str],
    walk_km: float,
    progress: Callable[[int, int], None],
) -> list[Outlet]:
    codes = [bt.code for bt in BUSINESS_TYPES]
    by_type = dict(zip(codes, _apportion(total, [float(OUTLETS_BY_TYPE[c]) for c in codes]), strict=True))
    # Communities get outlets by population; a city of zero residents spreads them evenly.
    base = [max(c.population, 1) for c in communities]
    per_community = {code: _apportion(by_type[code], [b * rng.uniform(0.7, 1.3) for b in base]) for code in codes}
    chain_of = {code: [(chain, share) for chain in CHAINS for c, share in chain.shares if c == code] for code in codes}
    names_zh = {bt.code: bt.name_zh for bt in BUSINESS_TYPES}
    index = _CircleIndex(circles, walk_km)
    width = max(6, len(str(total)))
    outlets: list[Outlet] = []
    for k, community in enumerate(communities):
        district = district_of[community.circle_id]
        for code in codes:
            for _ in range(per_community[code][k]):
                east, north = _in_disc(rng, OUTLET_SPREAD_KM)
                lat, lon = _offset(community.lat, community.lon, east, north)
                draw, brand, supplier_id = rng.random(), None, UNAFFILIATED
                for chain, share in chain_of[code]:
                    if draw < share:
                        brand, supplier_id = chain.brand, chain.supplier_id
                        break
                    draw -= share
                else:
                    if code in CARRIES:
                        supplier_id = independents[district]
                n = len(outlets) + 1
                outlets.append(
                    Outlet(
                        id=f"O{n:0{width}d}",
                        name=f"{brand or '个体'}{names_zh[code]}{n}号",
                        business_type=code,
                        chain=brand,
                        supplier_id=supplier_id,
                        community_id=community.id,
                        lat=lat,
                        lon=lon,
                        circle_ids=served_circles(lat, lon, community.circle_id, index.near(lat, lon), walk_km),
                    )
                )
                if n % 10_000 == 0:
                    progress(n, total)
    if len(outlets) % 10_000:
        progress(len(outlets), total)
    return outlets
