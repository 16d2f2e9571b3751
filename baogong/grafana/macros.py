"""Expand a panel's SQL the way Grafana does before its PostgreSQL data source runs it.

Used by the panel tests and the panel benchmark, so that what runs against the database here is what a
Grafana 11 would send. The rules, as Grafana documents and implements them (checked in its source:
public/app/features/plugins/sql/datasource/SqlDatasource.ts `interpolateVariable`,
pkg/tsdb/sqleng/sql_engine.go `Interpolate`, pkg/tsdb/grafana-postgresql-datasource/macros.go):

1. Template variables first, in the browser: `$name`, `${name}` and `[[name]]` are replaced by the
   variable's current value, formatted by the SQL data source's `interpolateVariable`:
   * a single string value of a variable that is neither multi-value nor has "All": the value with every
     `'` doubled and NO quotes around it (so the SQL writes `'$necessity'`);
   * a single string value of a multi-value or "All" variable: quoted, `'v'` (`'` doubled inside);
   * several values (multi-value, or "All" without a custom all value, which selects every option):
     each quoted, joined with `,` (so the SQL writes `IN ($circle)`).
   A custom "all value" is inserted verbatim; Baogong's variables have none, so "All" means every option.
2. Then, in the server (sqleng), plain text replacements: `$__interval_ms` (milliseconds),
   `$__interval` (e.g. `1h`), `$__unixEpochFrom()` / `$__unixEpochTo()` (Unix seconds, UTC).
3. Then the PostgreSQL macro engine: every `$__name(args)` (regex `\\$([_a-zA-Z0-9]+)\\(([^\\)]*)\\)`,
   arguments split on `,` and trimmed):
   * `$__time(c)` -> `c AS "time"`; `$__timeEpoch(c)` -> `extract(epoch from c) as "time"`
   * `$__timeFilter(c)` -> `c BETWEEN 'FROM' AND 'TO'` (RFC 3339, UTC, nanoseconds trimmed)
   * `$__timeFrom()` / `$__timeTo()` -> `'FROM'` / `'TO'` (same format)
   * `$__timeGroup(c, '1h'[, fill])` -> `floor(extract(epoch from c)/3600)*3600` on plain PostgreSQL,
     `time_bucket('3600.000s',c)` when the data source has its TimescaleDB switch on;
     `$__timeGroupAlias(...)` adds ` AS "time"`. (A `$__timeGroup(...)` directly followed by `,` also gets
     the alias, for compatibility with Grafana < 5.3.)
   * `$__unixEpochFilter(c)` -> `c >= FROM_S AND c <= TO_S`; `$__unixEpochNanoFilter(c)` likewise in ns;
     `$__unixEpochNanoFrom()` / `$__unixEpochNanoTo()`; `$__unixEpochGroup(c, '1h')` ->
     `floor((c)/3600)*3600`, `$__unixEpochGroupAlias` adds ` AS "time"`.
   An unknown macro is an error (Grafana answers `unknown macro`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
VARIABLE = re.compile(r"\$\{([_a-zA-Z0-9]+)(?::([^}]*))?\}|\[\[([_a-zA-Z0-9]+)\]\]|\$([_a-zA-Z0-9]+)")
INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class MacroError(ValueError):
    """Grafana would refuse this query (unknown macro, missing argument, bad interval)."""


@dataclass(frozen=True)
class Variable:
    """A template variable's current value as the dashboard holds it.

    `values` is what is selected (every option's value when "All" is selected); `multi` / `include_all`
    are the variable's own settings, which decide the quoting.
    """

    values: tuple[str, ...]
    multi: bool = False
    include_all: bool = False


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def format_variable(var: Variable) -> str:
    if len(var.values) == 1 and not (var.multi or var.include_all):
        return var.values[0].replace("'", "''")
    if len(var.values) == 1:
        return quote_literal(var.values[0])
    return ",".join(quote_literal(v) for v in var.values)


def interpolate_variables(sql: str, variables: Mapping[str, Variable]) -> str:
    """Step 1: template variables. Names Grafana itself owns (`$__…`) are left for steps 2 and 3."""

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3) or m.group(4)
        if m.group(2):
            raise MacroError(f"variable format ${{{name}:{m.group(2)}}} is not supported by this expander")
        if name.startswith("__") or name not in variables:
            return m.group(0)
        return format_variable(variables[name])

    return VARIABLE.sub(replace, sql)


def parse_interval(text: str) -> timedelta:
    m = INTERVAL.match(text.strip().strip("'"))
    if not m:
        raise MacroError(f"error parsing interval {text}")
    return timedelta(seconds=int(m.group(1)) * UNIT_S[m.group(2)])


def format_interval(interval: timedelta) -> str:
    seconds = interval.total_seconds()
    for unit in ("y", "w", "d", "h", "m", "s"):
        if seconds >= UNIT_S[unit] and seconds % UNIT_S[unit] == 0:
            return f"{int(seconds // UNIT_S[unit])}{unit}"
    return f"{int(seconds * 1000)}ms"


def rfc3339(at: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped, `Z` for UTC."""
    at = at.astimezone(UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond:
        text += ("." + f"{at.microsecond:06d}").rstrip("0")
    return text + "Z"


def _seconds(interval: timedelta) -> str:
    s = interval.total_seconds()
    return str(int(s)) if s == int(s) else repr(s)  # Go's %v of a float64: 3600, 0.5


def _macro(name: str, args: list[str], start: datetime, end: datetime, timescaledb: bool) -> str:
    def column() -> str:
        if not args or not args[0]:
            raise MacroError(f"missing time column argument for macro {name}")
        return args[0]

    if name == "__time":
        return f'{column()} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {column()}) as "time"'
    if name == "__timeFilter":
        return f"{column()} BETWEEN '{rfc3339(start)}' AND '{rfc3339(end)}'"
    if name == "__timeFrom":
        return f"'{rfc3339(start)}'"
    if name == "__timeTo":
        return f"'{rfc3339(end)}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        interval = parse_interval(args[1])
        if timescaledb:
            group = f"time_bucket('{interval.total_seconds():.3f}s',{args[0]})"
        else:
            group = f"floor(extract(epoch from {args[0]})/{_seconds(interval)})*{_seconds(interval)}"
        return group + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name == "__unixEpochFilter":
        c = column()
        return f"{c} >= {int(start.timestamp())} AND {c} <= {int(end.timestamp())}"
    if name == "__unixEpochNanoFilter":
        c = column()
        return f"{c} >= {_ns(start)} AND {c} <= {_ns(end)}"
    if name == "__unixEpochNanoFrom":
        return str(_ns(start))
    if name == "__unixEpochNanoTo":
        return str(_ns(end))
    if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        s = _seconds(parse_interval(args[1]))
        return f"floor(({args[0]})/{s})*{s}" + (' AS "time"' if name == "__unixEpochGroupAlias" else "")
    raise MacroError(f'unknown macro "{name}"')


def _ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


def expand(
    sql: str,
    *,
    start: datetime,
    end: datetime,
    variables: Mapping[str, Variable] | None = None,
    interval: timedelta = timedelta(minutes=1),
    timescaledb: bool = False,
) -> str:
    """`sql` as Grafana's PostgreSQL data source would run it for the time range [start, end]."""
    sql = interpolate_variables(sql, variables or {})
    sql = sql.replace("$__interval_ms", str(int(interval.total_seconds() * 1000)))
    sql = sql.replace("$__interval", format_interval(interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(end.timestamp())))

    def replace(m: re.Match[str]) -> str:
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",")]
        if name == "__timeGroup" and sql[m.end() : m.end() + 1] == ",":
            name = "__timeGroupAlias"
        return _macro(name, args, start, end, timescaledb)

    return MACRO.sub(replace, sql)


def all_of(values: Sequence[str], *, multi: bool = True) -> Variable:
    """A multi-value variable with "All" selected: every option."""
    return Variable(tuple(values), multi=multi, include_all=True)
