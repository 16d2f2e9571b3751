"""The default necessity catalogue and the plan's business types (pure data).

Figures are defaults a city tunes with its own statistics; they are sized so
that a living circle of ~31,600 residents needs plausible daily quantities.
Thresholds are days of supply: below `watch_days` a circle is WATCH, below
`shortage_days` SHORTAGE, below `critical_days` CRITICAL.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Necessity:
    code: str
    name_zh: str
    name_en: str
    unit: str  # canonical: kg, L or piece
    per_capita_daily: float
    watch_days: float
    shortage_days: float
    critical_days: float
    freshness_minutes: int
    min_coverage: float = 0.5


@dataclass(frozen=True, slots=True)
class BusinessType:
    code: str
    name_zh: str
    name_en: str
    category: str  # basic (基本保障类) or quality (品质提升类)


NECESSITIES: tuple[Necessity, ...] = (
    Necessity("rice", "大米", "rice", "kg", 0.25, 7, 3, 1, 24 * 60),
    Necessity("flour", "面粉", "flour", "kg", 0.20, 7, 3, 1, 24 * 60),
    Necessity("cooking_oil", "食用油", "cooking oil", "L", 0.03, 10, 4, 2, 24 * 60),
    Necessity("pork", "猪肉", "pork", "kg", 0.08, 4, 2, 1, 12 * 60),
    Necessity("eggs", "鸡蛋", "eggs", "kg", 0.05, 4, 2, 1, 12 * 60),
    Necessity("leafy_vegetables", "叶菜", "leafy vegetables", "kg", 0.20, 3, 1.5, 0.5, 6 * 60),
    Necessity("root_vegetables", "根茎菜", "root vegetables (cabbage, potato, radish)", "kg", 0.30, 5, 2, 1, 12 * 60),
    Necessity("milk", "牛奶", "milk", "L", 0.10, 4, 2, 1, 12 * 60),
    Necessity("bottled_water", "瓶装水", "bottled water", "L", 0.50, 5, 2, 1, 24 * 60),
    Necessity("instant_noodles", "方便面", "instant noodles", "piece", 0.20, 7, 3, 1, 24 * 60),
    Necessity("salt", "食盐", "salt", "kg", 0.01, 14, 7, 3, 48 * 60),
    Necessity("fever_medicine", "退烧感冒药", "fever/cold medicine", "piece", 0.02, 7, 3, 1, 24 * 60),
)

BUSINESS_TYPES: tuple[BusinessType, ...] = (
    BusinessType("convenience_store", "便利店", "convenience store", "basic"),
    BusinessType("supermarket", "超市", "supermarket", "basic"),
    BusinessType("vegetable_market", "菜市场", "vegetable market", "basic"),
    BusinessType("fresh_food_store", "生鲜店", "fresh-food store", "basic"),
    BusinessType("breakfast_shop", "早餐店", "breakfast shop", "basic"),
    BusinessType("repair_point", "维修点", "repair point", "basic"),
    BusinessType("laundry", "洗衣店", "laundry", "basic"),
    BusinessType("hair_salon", "美发店", "hair salon", "basic"),
    BusinessType("photo_print", "照相文印", "photo/print shop", "basic"),
    BusinessType("pharmacy", "药店", "pharmacy", "basic"),
    BusinessType("housekeeping", "家政", "housekeeping", "basic"),
    BusinessType("postal_express", "邮政快递", "postal and express point", "basic"),
    BusinessType("recycling_point", "再生资源回收点", "recycling point", "basic"),
    BusinessType("elderly_care", "养老", "elderly care", "quality"),
    BusinessType("specialty_restaurant", "特色餐饮", "specialty restaurant", "quality"),
    BusinessType("bakery", "烘焙", "bakery", "quality"),
    BusinessType("bookstore", "书店", "bookstore", "quality"),
    BusinessType("gym", "健身", "gym", "quality"),
    BusinessType("child_care", "托育", "child care", "quality"),
    BusinessType("training", "培训", "training", "quality"),
    BusinessType("travel_service", "旅游服务", "travel service", "quality"),
    BusinessType("health_care", "健康服务", "health care", "quality"),
    BusinessType("florist", "鲜花", "florist", "quality"),
    BusinessType("tea_coffee", "茶饮咖啡", "tea/coffee", "quality"),
    BusinessType("pet_services", "宠物服务", "pet services", "quality"),
)

_GROCERY = ("rice", "flour", "cooking_oil", "eggs", "milk", "bottled_water", "instant_noodles", "salt")
_FRESH = ("pork", "eggs", "leafy_vegetables", "root_vegetables")

#: Which business types are expected to carry which necessities (coverage denominators).
CARRIES: dict[str, tuple[str, ...]] = {
    "supermarket": (*_GROCERY, "pork", "leafy_vegetables", "root_vegetables"),
    "convenience_store": ("rice", "cooking_oil", "milk", "bottled_water", "instant_noodles", "salt"),
    "vegetable_market": (*_FRESH, "rice", "flour", "cooking_oil"),
    "fresh_food_store": (*_FRESH, "milk"),
    "pharmacy": ("fever_medicine",),
}

NECESSITY_BY_CODE: dict[str, Necessity] = {n.code: n for n in NECESSITIES}

# ---------------------------------------------------------------- plausibility ceilings
#
# Validation (schema.contract) refuses a stock, sale or price that no outlet can have: one
# barcode pasted into the quantity column (6901234567890) or a price typed per tonne instead of
# per kg would otherwise make a whole circle's days of supply, or its price index, confidently
# wrong. The ceilings are not estimates of normal stock: each is about ten times the most the
# largest outlet of its kind plausibly holds, so that a real report, even a stockpiling outlet's
# during an emergency, is never refused, while a number that is wrong by orders of magnitude is.
# A city may tune them like the rest of the catalogue.

#: The most of a necessity one outlet of the largest format can report, in the canonical unit.
#: The largest format is a hypermarket (大卖场, ~10,000 m², back room and pallets included); what
#: such a store holds at its fullest is in the comment, the ceiling is about ten times that.
STOCK_CEILING: dict[str, float] = {
    "rice": 200_000,  # sells ~1.5 t a day, holds under 20 t (a few pallet rows of 5-25 kg bags)
    "flour": 100_000,  # under 10 t
    "cooking_oil": 100_000,  # L; a pallet of 5 L bottles is ~800 L, a dozen pallets at most
    "pork": 30_000,  # chilled and frozen together, under 3 t
    "eggs": 30_000,  # under 3 t (~50,000 eggs)
    "leafy_vegetables": 30_000,  # perishable within days: under 3 t
    "root_vegetables": 100_000,  # cabbage, potato and radish keep: under 10 t
    "milk": 100_000,  # L; UHT milk on pallets, under 10,000 L
    "bottled_water": 300_000,  # L; ~30 pallets of 24 x 550 ml cases (~900 L a pallet)
    "instant_noodles": 500_000,  # pieces (packs); ~20 pallets of 2,400
    "salt": 20_000,  # under 2 t (400 g bags)
    "fever_medicine": 20_000,  # pieces (boxes); an in-store pharmacy counter, under 2,000
}

#: A necessity not in this catalogue (a city's own addition): a ceiling per canonical unit that no
#: retail outlet reaches (1,000 t, 1,000 m³, a million pieces), so only the grossest errors stop.
STOCK_CEILING_ANY_NECESSITY = 1_000_000.0

#: The share of `STOCK_CEILING` an outlet of a smaller business type can report. Types whose
#: outlets can be as big as a hypermarket (a whole market hall reporting as one outlet) keep the
#: full ceiling; a fresh-food store (100-300 m²) a tenth; every other type, a convenience store,
#: a pharmacy's shelf of rice, a bakery's flour, a twentieth (e.g. 10 t of rice, 15,000 L of
#: water in a convenience store that holds a few hundred kg and a few hundred litres at most).
#: An outlet whose business type validation does not know gets the full ceiling.
TYPE_SHARE: dict[str, float] = {
    "supermarket": 1.0,
    "vegetable_market": 1.0,
    "fresh_food_store": 0.1,
}
OTHER_TYPE_SHARE = 0.05

#: A business type's own trade, where its ceiling is not a share of the hypermarket's.
TYPE_CEILING: dict[tuple[str, str], float] = {
    # A large chain pharmacy holds 1,000-3,000 boxes of fever and cold medicine at its fullest.
    ("pharmacy", "fever_medicine"): 20_000,
    # A bakery's flour room: a few tonnes at most.
    ("bakery", "flour"): 30_000,
    # A breakfast shop's soy milk and eggs are small; its flour (steamed buns) up to a tonne.
    ("breakfast_shop", "flour"): 10_000,
}


def _stock_ceilings() -> dict[str | None, dict[str, float]]:
    out: dict[str | None, dict[str, float]] = {None: dict(STOCK_CEILING)}  # None: an outlet of unknown type
    for bt in BUSINESS_TYPES:
        share = TYPE_SHARE.get(bt.code, OTHER_TYPE_SHARE)
        out[bt.code] = {n: TYPE_CEILING.get((bt.code, n), c * share) for n, c in STOCK_CEILING.items()}
    return out


#: business type (None: unknown) -> necessity -> the most one outlet can report, canonical unit.
STOCK_CEILINGS: dict[str | None, dict[str, float]] = _stock_ceilings()

#: `sold_24h` may exceed stock (an outlet restocks during the day, and panic buying empties shelves
#: more than once), but not this many times the outlet's stock ceiling, itself ten times a full store.
SOLD_24H_MULTIPLE = 3.0

#: The highest plausible retail price, CNY per canonical unit, about ten times the dearest kind on
#: sale (premium and imported included; normal prices in the comment). A price given per tonne
#: or per case while the unit says kg or piece lands far above it.
PRICE_CEILING: dict[str, float] = {
    "rice": 500,  # 4-10 CNY/kg; imported premium rice ~50
    "flour": 300,  # 3-10 CNY/kg
    "cooking_oil": 1_000,  # 10-30 CNY/L; camellia and olive oil ~100
    "pork": 1_000,  # 20-40 CNY/kg; premium black pork ~100
    "eggs": 500,  # 8-20 CNY/kg; premium ~50
    "leafy_vegetables": 500,  # 2-20 CNY/kg; ~50 at worst in a shortage
    "root_vegetables": 300,  # 1-10 CNY/kg
    "milk": 500,  # 8-30 CNY/L; premium ~50
    "bottled_water": 500,  # 1-10 CNY/L; imported mineral water ~50
    "instant_noodles": 200,  # 1-10 CNY a pack; premium bowls ~20
    "salt": 1_000,  # 2-20 CNY/kg; speciality salts ~100
    "fever_medicine": 2_000,  # 5-100 CNY a box; imported ~200
}

#: A necessity not in this catalogue: CNY per canonical unit that no necessity is sold at.
PRICE_CEILING_ANY_NECESSITY = 100_000.0

#: Business type code -> English name, for rejection messages.
BUSINESS_TYPE_NAME: dict[str, str] = {bt.code: bt.name_en for bt in BUSINESS_TYPES}
