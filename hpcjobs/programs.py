"""Runs of one compiled program together (Settings.program_key says which program a run's is), so that a
process builds and compiles each program once. Pure: submit and the worker agree on the order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .settings import Settings


def by_program(run_ids: Sequence[str], keys: Mapping[str, str]) -> list[list[str]]:
    """Runs grouped by program key: groups in the order their first run comes, runs in their own order."""
    groups: dict[str, list[str]] = {}
    for run_id in run_ids:
        groups.setdefault(keys[run_id], []).append(run_id)
    return list(groups.values())


def in_program_order(run_ids: Sequence[str], keys: Mapping[str, str]) -> list[str]:
    """The runs reordered so that those of one program are adjacent; a split into contiguous parts then keeps
    each program in as few processes as it can."""
    return [run_id for group in by_program(run_ids, keys) for run_id in group]


def program_order(run_ids: Sequence[str], settings: Mapping[str, Settings]) -> list[str]:
    """in_program_order with each run's key taken from its settings (run id -> data/model/train)."""
    return in_program_order(run_ids, {run_id: settings[run_id].program_key() for run_id in run_ids})
