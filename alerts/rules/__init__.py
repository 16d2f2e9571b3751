"""Alert rules: each turns stored rows into `Verdict`s (pure), one per subject.

A rule names the query that loads its subjects (schema/queries.sql), who
hears about it (`audience`: the circle's responders or the operators), and a
pure function from rows and the evaluation time to verdicts (`sql`, when set, is
the query itself, for a rule whose SQL lives in its own named file). `policy`, when
set, replaces the dispatcher's hold times for this rule. `alerts.evaluate`
runs every rule the same way, so adding a rule is a module here and a line in
`alerts.pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg.sql import SQL

from alerts.model import Policy, Verdict

Audience = Literal["responders", "operators"]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    query: str
    audience: Audience
    verdicts: Callable[[Sequence[dict[str, Any]], datetime], list[Verdict]]
    params: dict[str, Any] | None = None
    policy: Policy | None = None
    sql: SQL | None = None  # the subjects' query itself, for a rule whose SQL lives in its own file
