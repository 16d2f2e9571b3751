"""Who is paged: routing by labels, who is on call, and the escalation chain (pure: no I/O).

The three decisions the dispatcher asks of a `schema.teams.Directory` (load one
with `schema.teams_store.load_directory`):

- `route(directory, labels) -> list[str]`: the ids of the teams an alert with
  these labels goes to, in order, each once (`explain` says which route and
  which `teams` entry brought each). Labels are the alert's (alertname,
  circle, necessity, severity…) plus, when the caller knows them, `rule` and
  `community`; `district` is filled in from the circle when absent. An empty
  list means no team answers for it (no route reaches a team and the tree
  has no `fallback`): the caller keeps its last-resort receivers.
- `on_call(team, at) -> list[Member]`: who of `team` is on call at `at`
  (an aware datetime): the members of the overrides covering `at`, else the
  rotation's member of that shift, else (no rotation) every member.
  `duty(team, at)` adds since/until and why.
- `escalation_chain(directory, team_id) -> list[str]`: the team, then the
  team it escalates to, and so on (circle team → circle owner → district
  bureau → city bureau), each once.

Every function is deterministic in its arguments: time is passed in, never read.
"""

from __future__ import annotations

from alerts.route.escalation import escalation_chain
from alerts.route.oncall import Duty, Shift, duty, on_call, shift_at
from alerts.route.tree import Hit, explain, resolve, route, routing_labels
from schema.teams import Channel, Directory, Member, Team

__all__ = [
    "Channel",
    "Directory",
    "Duty",
    "Hit",
    "Member",
    "Shift",
    "Team",
    "duty",
    "escalation_chain",
    "explain",
    "on_call",
    "resolve",
    "route",
    "routing_labels",
    "shift_at",
]
