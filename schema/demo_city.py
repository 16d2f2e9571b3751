"""A synthetic demo city for demos, tests and benchmarks (pure: no database, no I/O).

SYNTHETIC DATA. Nothing here is a real outlet, shop, supplier, person or
address. The city is *sized* from the figures of Suihua's 15-minute living
circle plan (June 2024) for the Beilin district core:
316,000 residents on about 43 km², 10 street offices, 40 communities,
10 living circles and 6,668 commercial outlets. Names are generic Chinese
place words; coordinates are scattered around Suihua's centre.

`build_demo_city(seed)` is deterministic: the same seed gives the same city,
field for field (it draws only from `random.Random(seed)`, whose sequences
CPython keeps stable across releases). It takes about 0.1 s.

Layout. Ten circle centres sit on a jittered hexagonal grid of rows 3-4-3,
about 1.8 km apart, around (46.65 N, 126.97 E); with a 1 km walking radius
the circles span roughly 7.5 km x 5.7 km ≈ 43 km². Each circle is
centred on its first community; its four communities lie within
`COMMUNITY_SPREAD_KM` of the centre, and each outlet lies within
`OUTLET_SPREAD_KM` of its community, so every outlet is within ~1 km of its
circle's centre. An outlet serves its community's circle plus every other
circle whose centre is within a walk (`schema.circles.served_circles`), so
outlets between two close circles count for both.

Ownership. Five chains each own a share of the outlets of their business
types (`CHAINS`); the remaining outlets of types that carry a necessity
(`schema.catalogue.CARRIES`) belong to one of three "independent merchants"
suppliers, by district part; outlets of types that carry no necessity belong
to the `UNAFFILIATED` supplier, which never gets an API key.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from schema.catalogue import BUSINESS_TYPES, CARRIES
from schema.circles import WALK_KM, served_circles

#: The district every demo circle belongs to (`circles.district`: totals above circles).
DISTRICT = "北林区"
#: Suihua city centre, the middle of the demo district.
CENTRE_LAT = 46.65
CENTRE_LON = 126.97
#: Communities lie within this distance of their circle centre...
COMMUNITY_SPREAD_KM = 0.45
#: ...and outlets within this distance of their community (0.45 + 0.5 < 1 km).
OUTLET_SPREAD_KM = 0.5

TOTAL_POPULATION = 316_000
CIRCLE_COUNT = 10
COMMUNITIES_PER_CIRCLE = 4
STREET_OFFICE_COUNT = 10

#: Outlets per business type in the demo district (6,668 in all, the plan's figure).
#: Basic-guarantee types dominate; the five that carry necessities are
#: convenience stores, supermarkets, vegetable markets, fresh-food stores and pharmacies.
OUTLETS_BY_TYPE: dict[str, int] = {
    # basic (基本保障类): 5,170
    "convenience_store": 1300,
    "supermarket": 250,
    "vegetable_market": 50,
    "fresh_food_store": 650,
    "breakfast_shop": 700,
    "repair_point": 260,
    "laundry": 200,
    "hair_salon": 620,
    "photo_print": 150,
    "pharmacy": 400,
    "housekeeping": 150,
    "postal_express": 320,
    "recycling_point": 120,
    # quality (品质提升类): 1,498
    "elderly_care": 60,
    "specialty_restaurant": 520,
    "bakery": 150,
    "bookstore": 40,
    "gym": 70,
    "child_care": 60,
    "training": 180,
    "travel_service": 30,
    "health_care": 120,
    "florist": 60,
    "tea_coffee": 170,
    "pet_services": 38,
}
TOTAL_OUTLETS = 6_668

UNAFFILIATED = "unaffiliated"

_KM_PER_DEG_LAT = 111.195

# Circle centres in km (east, north) of the centre before jitter: rows of 3, 4, 3.
_GRID_KM: tuple[tuple[float, float], ...] = (
    (-1.8, 1.8),
    (0.0, 1.8),
    (1.8, 1.8),
    (-2.7, 0.0),
    (-0.9, 0.0),
    (0.9, 0.0),
    (2.7, 0.0),
    (-1.8, -1.8),
    (0.0, -1.8),
    (1.8, -1.8),
)
_GRID_JITTER_KM = 0.2

_COMMUNITY_NAMES = (
    "朝阳", "幸福", "和平", "建设", "民主", "团结", "繁荣", "兴隆", "长安", "安康",
    "育才", "文化", "光明", "新华", "东风", "向阳", "松江", "北苑", "南苑", "西园",
    "东园", "太平", "永安", "丰收", "胜利", "红旗", "春华", "秋实", "福兴", "康宁",
    "怡和", "锦绣", "翠湖", "东湖", "林苑", "桦林", "嘉园", "滨河", "望江", "新城",
)  # fmt: skip
_STREET_OFFICES = (
    "中心街道", "东兴街道", "西城街道", "南关街道", "北关街道",
    "新华街道", "和平街道", "光明街道", "永安街道", "康庄街道",
)  # fmt: skip
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何林高罗"


@dataclass(frozen=True, slots=True)
class Chain:
    """A demo chain: which share of each business type's outlets it owns."""

    supplier_id: str
    name: str
    brand: str  # the outlets' `chain` column and name prefix
    kind: str
    shares: tuple[tuple[str, float], ...]


CHAINS: tuple[Chain, ...] = (
    Chain("S01", "北林惠民超市连锁有限公司", "惠民超市", "supermarket", (("supermarket", 0.4),)),
    Chain("S02", "便民优选便利店连锁", "便民优选", "chain", (("convenience_store", 0.3),)),
    Chain("S03", "北林区农贸市场管理有限公司", "北林农贸", "market", (("vegetable_market", 0.8),)),
    Chain("S04", "鲜丰生鲜连锁", "鲜丰生鲜", "chain", (("fresh_food_store", 0.35),)),
    Chain("S05", "康宁大药房连锁", "康宁大药房", "pharmacy", (("pharmacy", 0.5),)),
)

#: Independent merchants, grouped by district part (circle index -> supplier).
_INDEPENDENTS: tuple[tuple[str, str], ...] = (
    ("S06", "北林区个体商户（北片）"),
    ("S07", "北林区个体商户（中片）"),
    ("S08", "北林区个体商户（南片）"),
)


def _independent_for(circle_index: int) -> str:
    """The independent-merchants supplier of the circle's grid row (north, middle, south)."""
    north = _GRID_KM[circle_index][1]
    return _INDEPENDENTS[0 if north > 0 else 1 if north == 0 else 2][0]


@dataclass(frozen=True, slots=True)
class Circle:
    id: str
    name: str
    center_lat: float
    center_lon: float
    owner: str  # 圈主
    team: str  # its emergency supply team


@dataclass(frozen=True, slots=True)
class Community:
    id: str
    name: str
    street_office: str
    population: int
    circle_id: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Supplier:
    id: str
    name: str
    kind: str  # chain, supermarket, market, pharmacy, independent, unaffiliated
    has_key: bool  # False for the unaffiliated supplier: nobody reports for it


@dataclass(frozen=True, slots=True)
class Outlet:
    id: str
    name: str
    business_type: str
    chain: str | None
    supplier_id: str
    community_id: str
    lat: float
    lon: float
    circle_ids: tuple[str, ...]  # its community's circle first, then the others it serves, sorted


@dataclass(frozen=True, slots=True)
class DemoCity:
    seed: int
    circles: tuple[Circle, ...]
    communities: tuple[Community, ...]
    suppliers: tuple[Supplier, ...]
    outlets: tuple[Outlet, ...]

    @property
    def population(self) -> int:
        return sum(c.population for c in self.communities)

    def outlet_circles(self) -> Iterator[tuple[str, str]]:
        """Every (outlet_id, circle_id) pair, as stored in `outlet_circles`."""
        for outlet in self.outlets:
            for circle_id in outlet.circle_ids:
                yield outlet.id, circle_id


def _offset(lat: float, lon: float, east_km: float, north_km: float) -> tuple[float, float]:
    """The point `east_km`, `north_km` away from (lat, lon); exact enough at city scale."""
    new_lat = lat + north_km / _KM_PER_DEG_LAT
    new_lon = lon + east_km / (_KM_PER_DEG_LAT * math.cos(math.radians(lat)))
    return round(new_lat, 6), round(new_lon, 6)


def _in_disc(rng: random.Random, radius_km: float) -> tuple[float, float]:
    """A point uniformly distributed in a disc of `radius_km`, as (east, north) km."""
    r = radius_km * math.sqrt(rng.random())
    theta = rng.uniform(0.0, 2 * math.pi)
    return r * math.cos(theta), r * math.sin(theta)


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder); sums exactly."""
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _build_circles(rng: random.Random) -> list[Circle]:
    names = _COMMUNITY_NAMES
    circles = []
    for i, (east, north) in enumerate(_GRID_KM):
        lat, lon = _offset(
            CENTRE_LAT,
            CENTRE_LON,
            east + rng.uniform(-_GRID_JITTER_KM, _GRID_JITTER_KM),
            north + rng.uniform(-_GRID_JITTER_KM, _GRID_JITTER_KM),
        )
        centre_community = names[i * COMMUNITIES_PER_CIRCLE]
        name = f"北林区·{centre_community}社区生活圈"
        circles.append(
            Circle(
                id=f"C{i + 1:02d}",
                name=name,
                center_lat=lat,
                center_lon=lon,
                owner=f"{centre_community}社区党委（示例圈主）",
                team=f"{centre_community}生活圈应急保供队",
            )
        )
    return circles


def _build_communities(rng: random.Random, circles: list[Circle]) -> list[Community]:
    weights = [rng.uniform(0.6, 1.4) for _ in range(CIRCLE_COUNT * COMMUNITIES_PER_CIRCLE)]
    populations = _apportion(TOTAL_POPULATION, weights)
    communities = []
    for i, circle in enumerate(circles):
        for j in range(COMMUNITIES_PER_CIRCLE):
            k = i * COMMUNITIES_PER_CIRCLE + j
            # The circle is centred on its first community; the others sit around it.
            east, north = (0.0, 0.0) if j == 0 else _in_disc(rng, COMMUNITY_SPREAD_KM)
            lat, lon = _offset(circle.center_lat, circle.center_lon, east, north)
            # Three communities belong to the circle's own street office, one to the next.
            office = _STREET_OFFICES[(i + (j == COMMUNITIES_PER_CIRCLE - 1)) % STREET_OFFICE_COUNT]
            communities.append(
                Community(
                    id=f"{circle.id}-{j + 1}",
                    name=f"{_COMMUNITY_NAMES[k]}社区",
                    street_office=office,
                    population=populations[k],
                    circle_id=circle.id,
                    lat=lat,
                    lon=lon,
                )
            )
    return communities


def _build_suppliers() -> list[Supplier]:
    suppliers = [Supplier(c.supplier_id, c.name, c.kind, True) for c in CHAINS]
    suppliers += [Supplier(sid, name, "independent", True) for sid, name in _INDEPENDENTS]
    suppliers.append(Supplier(UNAFFILIATED, "未接入商户（不经营必需品）", "unaffiliated", False))
    return suppliers


def _build_outlets(
    rng: random.Random, circles: list[Circle], communities: list[Community], walk_km: float
) -> list[Outlet]:
    names_zh = {bt.code: bt.name_zh for bt in BUSINESS_TYPES}
    # How many outlets of each type each community has: proportional to population, with noise.
    per_community: dict[str, list[int]] = {}
    for bt in BUSINESS_TYPES:
        weights = [c.population * rng.uniform(0.7, 1.3) for c in communities]
        per_community[bt.code] = _apportion(OUTLETS_BY_TYPE[bt.code], weights)

    # Which outlets (per type, by position in generation order) each chain owns.
    owner: dict[tuple[str, int], Chain] = {}
    for chain in CHAINS:
        for code, share in chain.shares:
            free = [n for n in range(OUTLETS_BY_TYPE[code]) if (code, n) not in owner]
            for n in rng.sample(free, round(OUTLETS_BY_TYPE[code] * share)):
                owner[(code, n)] = chain

    circle_index = {c.id: i for i, c in enumerate(circles)}
    seen: dict[str, int] = dict.fromkeys(OUTLETS_BY_TYPE, 0)
    branches: dict[tuple[str, str], int] = {}
    outlets: list[Outlet] = []
    for k, community in enumerate(communities):
        for bt in BUSINESS_TYPES:
            for _ in range(per_community[bt.code][k]):
                n = seen[bt.code]
                seen[bt.code] += 1
                owned_by = owner.get((bt.code, n))
                east, north = _in_disc(rng, OUTLET_SPREAD_KM)
                lat, lon = _offset(community.lat, community.lon, east, north)
                if owned_by is not None:
                    supplier_id, brand = owned_by.supplier_id, owned_by.brand
                    branch = branches[(brand, community.id)] = branches.get((brand, community.id), 0) + 1
                    name = f"{brand}{community.name.removesuffix('社区')}{branch}号店"
                elif bt.code in CARRIES:
                    brand = None
                    supplier_id = _independent_for(circle_index[community.circle_id])
                    name = f"{rng.choice(_SURNAMES)}记{names_zh[bt.code]}（{community.name}）"
                else:
                    brand, supplier_id = None, UNAFFILIATED
                    name = f"{rng.choice(_SURNAMES)}记{names_zh[bt.code]}（{community.name}）"
                circle_ids = served_circles(lat, lon, community.circle_id, circles, walk_km)
                outlets.append(
                    Outlet(
                        id=f"O{len(outlets) + 1:05d}",
                        name=name,
                        business_type=bt.code,
                        chain=brand,
                        supplier_id=supplier_id,
                        community_id=community.id,
                        lat=lat,
                        lon=lon,
                        circle_ids=circle_ids,
                    )
                )
    return outlets


def build_demo_city(seed: int = 2024, walk_km: float = WALK_KM) -> DemoCity:
    """The synthetic Beilin-district demo city for `seed`; same seed, same city."""
    if sum(OUTLETS_BY_TYPE.values()) != TOTAL_OUTLETS or set(OUTLETS_BY_TYPE) != {b.code for b in BUSINESS_TYPES}:
        raise ValueError("OUTLETS_BY_TYPE must cover every business type and sum to TOTAL_OUTLETS")
    rng = random.Random(seed)
    circles = _build_circles(rng)
    communities = _build_communities(rng, circles)
    suppliers = _build_suppliers()
    outlets = _build_outlets(rng, circles, communities, walk_km)
    return DemoCity(
        seed=seed,
        circles=tuple(circles),
        communities=tuple(communities),
        suppliers=tuple(suppliers),
        outlets=tuple(outlets),
    )
