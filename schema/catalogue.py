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
