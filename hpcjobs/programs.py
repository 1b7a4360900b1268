"""Which runs train the same compiled program. Pure: submit, the worker and a population trainer agree on it.

Two runs with one program key differ only in numbers the compiled training step is fed (the seed, hence the
initial weights and the data split; the learning rate, an optimizer variable; the number of epochs; early
stopping, a callback): one process can build and compile the model once and train all of them with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .settings import Settings

# Settings that do not change the compiled program: the training step reads them, it is not built from them.
NOT_IN_PROGRAM = frozenset(
    {"train.learning_rate", "train.epochs", "train.early_stopping_patience", "train.population"}
)


def program_key(settings: Settings) -> str:
    """The data, model and train settings that decide a run's compiled program, as canonical JSON."""
    kept = {
        section: {name: value for name, value in table.items() if f"{section}.{name}" not in NOT_IN_PROGRAM}
        for section, table in settings.to_dict().items()
    }
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


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
    return in_program_order(run_ids, {run_id: program_key(settings[run_id]) for run_id in run_ids})
