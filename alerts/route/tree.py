"""Routing an alert through the tree to teams, in the manner of Alertmanager's routing tree (pure).

An alert enters the root. At each route its children are tried in order;
a child whose matchers all match is entered (recursively), and unless it
says `continue` the siblings after it are not tried. A route none of whose
children matched is where the alert lands; it may land on several routes
(through `continue`). Each landing route contributes its `teams` (inherited
from the parent when the route names none). An entry `@<kind>` resolves to
the teams of that kind whose scope is the alert's label of the kind's scope
(`schema.teams.KINDS`): `@circle_team` with `circle=C03` is C03's emergency
supply team. Nothing reached: the tree's `fallback` teams.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schema.teams import KINDS, REF_PREFIX, Directory, Route


@dataclass(frozen=True, slots=True)
class Hit:
    """One team an alert goes to: which route sent it there ('root', 'root.routes[1]', 'fallback'), via which entry."""

    team: str
    route: str
    via: str


def routing_labels(directory: Directory, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels routing matches: the alert's, with `district` filled in from its circle when absent."""
    out = dict(labels)
    circle = out.get("circle", "")
    if not out.get("district") and circle in directory.circle_districts:
        out["district"] = directory.circle_districts[circle]
    return out


def resolve(directory: Directory, entry: str, labels: Mapping[str, str]) -> list[str]:
    """The team ids one `teams` entry stands for, given the (routing) labels; sorted by id for references.

    A team id the directory does not hold resolves to nothing (the import
    refuses such routes, so this only happens to a hand-edited database).
    """
    if not entry.startswith(REF_PREFIX):
        return [entry] if entry in directory.teams else []
    kind = entry[len(REF_PREFIX) :]
    if kind not in KINDS:
        return []
    scope_label = KINDS[kind]
    value = labels.get(scope_label, "") if scope_label else ""
    if scope_label and not value:
        return []
    return sorted(
        t.id for t in directory.teams.values() if t.kind == kind and (scope_label is None or t.scope == value)
    )


def _landings(
    route: Route, labels: Mapping[str, str], path: str, inherited: tuple[str, ...]
) -> list[tuple[str, tuple[str, ...]]]:
    teams = route.teams if route.teams is not None else inherited
    out: list[tuple[str, tuple[str, ...]]] = []
    for i, child in enumerate(route.routes):
        if all(m.matches(labels) for m in child.matchers):
            out += _landings(child, labels, f"{path}.routes[{i}]", teams)
            if not child.continue_:
                break
    return out or [(path, teams)]


def explain(directory: Directory, labels: Mapping[str, str]) -> list[Hit]:
    """Every team the alert goes to, in order, each once, with the route and entry that chose it."""
    labels = routing_labels(directory, labels)
    root = directory.tree.root
    landings = _landings(root, labels, "root", ()) if all(m.matches(labels) for m in root.matchers) else []
    hits: list[Hit] = []
    seen: set[str] = set()

    def add(path: str, entries: tuple[str, ...]) -> None:
        for entry in entries:
            for team in resolve(directory, entry, labels):
                if team not in seen:
                    seen.add(team)
                    hits.append(Hit(team, path, entry))

    for path, entries in landings:
        add(path, entries)
    if not hits:
        add("fallback", directory.tree.fallback)
    return hits


def route(directory: Directory, labels: Mapping[str, str]) -> list[str]:
    """The ids of the teams an alert with `labels` goes to, in order, each once ([]: no team answers for it)."""
    return [h.team for h in explain(directory, labels)]
