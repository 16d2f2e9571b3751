"""Escalation chains: each team names the next (`Team.escalates_to`); the chain follows them (pure)."""

from __future__ import annotations

from schema.teams import Directory


def escalation_chain(directory: Directory, team_id: str) -> list[str]:
    """`team_id` and the teams it escalates to, in order, each once; [] for a team the directory lacks.

    The chain ends at a team that names no next team, or names one the
    directory lacks, or would repeat a team (the import refuses cycles).
    """
    chain: list[str] = []
    current: str | None = team_id
    while current is not None and current in directory.teams and current not in chain:
        chain.append(current)
        current = directory.teams[current].escalates_to
    return chain
