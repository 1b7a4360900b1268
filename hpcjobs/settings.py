"""A run's settings as typed, frozen values, read by the login-node commands and the compute side alike.

Ground floor: it imports nothing of hpcjobs, so every module can take these types.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Execution:
    """How the steps run, never what they compute: batch size, learning rate and epochs stay the user's."""

    steps_per_execution: int
    jit_compile: bool
    eval_batch_size: int


@dataclass(frozen=True)
class Run:
    """One training: a full setting of data/model/train plus a seed."""

    run_id: str
    config_id: str
    seed: int
    settings: dict[str, dict[str, Any]]

    def config(self, sweep_name: str, backend: str) -> dict[str, Any]:
        """What the training task reads from config.json."""
        return {
            "run_id": self.run_id,
            "sweep": sweep_name,
            "backend": backend,
            "seed": self.seed,
            **copy.deepcopy(self.settings),
        }
