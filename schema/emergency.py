"""Emergency grades IV–I and what each changes: the defaults, in this one file, with the reasoning (pure).

A commerce bureau declares an emergency for the whole city, one district or
one circle (`Scope`), at a grade from IV (一般, the lowest) to I (特别重大,
the highest), the four response levels Chinese emergency plans use. Storage
is the integer (I = 1 … IV = 4, so "more severe" is "smaller"); people see
Roman numerals (`roman`, `parse_grade`).

A circle is under the most severe emergency covering it (`effective_grade`):
a circle declared at II inside a city at IV is at II; lifting the circle's
declaration puts it back to IV, lifting the city's too to normal. The
database computes the same thing (`circle_grades(at)`, migration 0019).

What a grade changes (`GradeRules`), per necessity where it matters:

- **demand multiplier** on every circle's daily demand (observed or from
  population), because people buy ahead of the shortage they fear and the
  observed `sold_24h` trails that by a day;
- **status thresholds**: watch / shortage / critical days times a factor,
  because resupply takes longer in an emergency (traffic controls, closed
  wholesale markets), so the same days of supply leave less margin;
- **expected report cadence**: how often every outlet should report (in
  emergencies commerce authorities ask for daily or more frequent reports);
- **freshness window**: a report confirms stock for at most
  `freshness_cadences` expected reports (one late report does not make a
  circle unknown; two missed ones do), and never longer than the
  necessity's normal window (`necessities.freshness_minutes`);
- **alert timers**: escalation and re-notification waits times a factor
  (`alerts.escalate.Timers.scaled`).

Every number below is a default to be tuned with the bureau: the sources are
qualitative (panic-buying reports from lockdowns and disasters), and the
observed demand (`sold_24h`) is what Baogong trusts once outlets send it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from types import MappingProxyType
from typing import Literal


class Grade(IntEnum):
    """Emergency response level; the integer is what is stored (1 = I, the most severe)."""

    I = 1  # noqa: E741 - the grade's own name
    II = 2
    III = 3
    IV = 4

    @property
    def roman(self) -> str:
        return self.name

    @property
    def name_zh(self) -> str:
        return _NAMES_ZH[self]


_NAMES_ZH = {Grade.I: "Ⅰ级（特别重大）", Grade.II: "Ⅱ级（重大）", Grade.III: "Ⅲ级（较大）", Grade.IV: "Ⅳ级（一般）"}
_UNICODE_ROMAN = {"Ⅰ": "I", "Ⅱ": "II", "Ⅲ": "III", "Ⅳ": "IV"}


def parse_grade(text: str | int) -> Grade:
    """`II`, `ii`, `Ⅱ`, `2` or 2 -> Grade.II. Raises ValueError naming the accepted forms."""
    if isinstance(text, int) and not isinstance(text, bool):
        if 1 <= text <= 4:
            return Grade(text)
    elif isinstance(text, str):
        word = _UNICODE_ROMAN.get(text.strip(), text.strip().upper())
        word = word.removesuffix("级").removeprefix("GRADE ").strip()
        if word in Grade.__members__:
            return Grade[word]
        if word.isdigit() and 1 <= int(word) <= 4:
            return Grade(int(word))
    raise ValueError(f"grade {text!r}: give IV, III, II or I (IV is the lowest, I the highest), or 4..1")


def roman(grade: int | None) -> str:
    """`2` -> 'II'; None (no emergency) -> '—'."""
    return "—" if grade is None else Grade(grade).roman


ScopeKind = Literal["city", "district", "circle"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an emergency holds: the whole city (`id` None), one district (its name) or one circle (its id)."""

    kind: ScopeKind
    id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("city", "district", "circle"):
            raise ValueError(f"scope {self.kind!r}: give city, district:NAME or circle:ID")
        if (self.kind == "city") != (self.id is None) or (self.id is not None and not self.id.strip()):
            raise ValueError("a city scope names nothing; a district or circle scope names one (district:NAME)")

    @classmethod
    def parse(cls, text: str) -> Scope:
        """`city`, `district:NAME` or `circle:ID` -> Scope. Raises ValueError with the forms."""
        kind, sep, name = text.strip().partition(":")
        kind = kind.strip().lower()
        if kind == "city" and not sep:
            return cls("city")
        if kind in ("district", "circle") and sep and name.strip():
            return cls(kind, name.strip())  # type: ignore[arg-type]
        raise ValueError(f"scope {text!r}: give city, district:NAME or circle:ID")

    def covers(self, circle_id: str, district: str) -> bool:
        return (
            self.kind == "city"
            or (self.kind == "district" and self.id == district)
            or (self.kind == "circle" and self.id == circle_id)
        )

    def __str__(self) -> str:
        return "city" if self.id is None else f"{self.kind}:{self.id}"


def effective_grade(declared: Iterable[tuple[Scope, int]], circle_id: str, district: str) -> Grade | None:
    """The most severe (lowest) grade of the active declarations covering the circle; None: no emergency."""
    grades = [g for scope, g in declared if scope.covers(circle_id, district)]
    return Grade(min(grades)) if grades else None


@dataclass(frozen=True, slots=True)
class GradeRules:
    """What one grade changes (see the module docstring); per-necessity maps override the grade's default."""

    grade: Grade
    demand_multiplier: float
    threshold_factor: float
    report_every_h: float
    timer_factor: float
    freshness_cadences: float = 2.0
    demand_by_necessity: Mapping[str, float] = field(default_factory=dict)
    report_every_h_by_necessity: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        numbers = (self.demand_multiplier, self.threshold_factor, self.report_every_h, self.timer_factor)
        if min(numbers) <= 0 or self.freshness_cadences <= 0:
            raise ValueError(f"grade {self.grade.roman}: every factor and cadence must be positive")
        if self.demand_multiplier < 1 or self.threshold_factor < 1 or self.timer_factor > 1:
            raise ValueError(f"grade {self.grade.roman}: an emergency never lowers demand or thresholds, never slows")

    def demand(self, necessity: str) -> float:
        """The multiplier on `necessity`'s daily demand."""
        return self.demand_by_necessity.get(necessity, self.demand_multiplier)

    def report_every(self, necessity: str) -> timedelta:
        """How often each outlet is expected to report `necessity`."""
        return timedelta(hours=self.report_every_h_by_necessity.get(necessity, self.report_every_h))

    def freshness_cap_minutes(self, necessity: str) -> int:
        """The longest freshness window of `necessity` under this grade (the normal window may be shorter)."""
        return max(1, round(self.report_every(necessity).total_seconds() / 60 * self.freshness_cadences))

    def freshness_minutes(self, necessity: str, normal_minutes: int) -> int:
        """The freshness window in force: the normal one, shortened to the grade's cap."""
        return min(normal_minutes, self.freshness_cap_minutes(necessity))

    def thresholds(self, watch: float, shortage: float, critical: float) -> tuple[float, float, float]:
        """Watch, shortage and critical days under this grade (all times the factor: their order holds)."""
        f = self.threshold_factor
        return watch * f, shortage * f, critical * f


# Shelf-stable goods people hoard first when a lockdown or a disaster is announced, and the medicine an
# epidemic empties pharmacies of: their demand rises faster than that of fresh food, which spoils at home.
_HOARDED = ("bottled_water", "instant_noodles")
_MEDICINE = "fever_medicine"
# Perishables turn over within a day or two; in a serious emergency their shelves empty within hours, so
# their stock must be reported more often than that of rice or salt.
_PERISHABLE = ("leafy_vegetables", "pork", "eggs", "milk")

#: The defaults. Reading the table by column:
#:
#: * demand_multiplier 1.2 / 1.5 / 2.0 / 3.0: panic-buying reports from lockdown announcements (staples
#:   sold at about two to three times their usual rate for the first days) put the top grade at 3x; the
#:   lowest grade (a warning, most people still buy as usual) adds a fifth. Hoarded shelf-stable goods go
#:   higher at II and I; fever medicine highest at every grade (epidemic waves have seen it sell many
#:   times over while food sales barely moved).
#: * threshold_factor 1.0 / 1.25 / 1.5 / 2.0: the bureau is warned earlier because restocking is slower:
#:   at I rice (normally watch 7 / shortage 3 / critical 1 days) is WATCH below 14 days, SHORTAGE below 6,
#:   CRITICAL below 2 — enough lead time to move stock from the city reserve.
#: * report_every_h 24 / 12 / 6 / 4 (perishables 6 / 4 / 3 / 2 from III): IV is the daily report commerce
#:   authorities ask for first; each grade up asks for reports about twice as often, as far as shops can
#:   count stock by hand (an ERP feed reports as often as it is told).
#: * freshness: a report confirms stock for two expected reports (`freshness_cadences`); so at IV and III
#:   the normal windows (6 to 48 h) mostly stand, at II staples are confirmed for 12 h instead of 24, at I
#:   for 8 h, perishables for 4 h.
#: * timer_factor 0.75 / 0.5 / 0.33 / 0.25: an unacknowledged critical page escalates after 10 min in
#:   normal times, 5 min at III, 2.5 min at I — a circle team that cannot answer is replaced quickly when
#:   an hour without supply matters.
DEFAULT_RULES: Mapping[Grade, GradeRules] = MappingProxyType(
    {
        Grade.IV: GradeRules(
            Grade.IV,
            demand_multiplier=1.2,
            threshold_factor=1.0,
            report_every_h=24,
            timer_factor=0.75,
            demand_by_necessity={_MEDICINE: 1.5},
        ),
        Grade.III: GradeRules(
            Grade.III,
            demand_multiplier=1.5,
            threshold_factor=1.25,
            report_every_h=12,
            timer_factor=0.5,
            demand_by_necessity={_MEDICINE: 2.5},
            report_every_h_by_necessity=dict.fromkeys(_PERISHABLE, 6.0),
        ),
        Grade.II: GradeRules(
            Grade.II,
            demand_multiplier=2.0,
            threshold_factor=1.5,
            report_every_h=6,
            timer_factor=0.33,
            demand_by_necessity={_MEDICINE: 4.0, **dict.fromkeys(_HOARDED, 2.5)},
            report_every_h_by_necessity=dict.fromkeys(_PERISHABLE, 3.0),
        ),
        Grade.I: GradeRules(
            Grade.I,
            demand_multiplier=3.0,
            threshold_factor=2.0,
            report_every_h=4,
            timer_factor=0.25,
            demand_by_necessity={_MEDICINE: 6.0, **dict.fromkeys(_HOARDED, 4.0)},
            report_every_h_by_necessity=dict.fromkeys(_PERISHABLE, 2.0),
        ),
    }
)


def rules(grade: int | None, table: Mapping[Grade, GradeRules] = DEFAULT_RULES) -> GradeRules | None:
    """The rules of `grade` (None: no emergency, normal rules apply)."""
    return None if grade is None else table[Grade(grade)]


#: The wildcard necessity in `freshness_caps`: the cap of a necessity the table does not name.
ANY_NECESSITY = "*"


def freshness_caps(
    necessities: Sequence[str] = (), table: Mapping[Grade, GradeRules] = DEFAULT_RULES
) -> dict[str, list[object]]:
    """The freshness caps as the level query takes them (three parallel arrays: grade, necessity, minutes).

    One row per grade for `ANY_NECESSITY` (the grade's own cadence) and one per grade and necessity with
    its own cadence; `necessities` adds rows for more codes (harmless: the same value as the wildcard).
    """
    grades: list[object] = []
    codes: list[object] = []
    minutes: list[object] = []
    for grade, r in sorted(table.items()):
        named = sorted({*r.report_every_h_by_necessity, *necessities})
        for code in (ANY_NECESSITY, *named):
            grades.append(int(grade))
            codes.append(code)
            minutes.append(r.freshness_cap_minutes("" if code == ANY_NECESSITY else code))
    return {"cap_grade": grades, "cap_necessity": codes, "cap_minutes": minutes}
