"""A run's settings as typed, frozen values, read by the login-node commands and the compute side alike.

Ground floor: it imports nothing of hpcjobs, so every module can take these types.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Execution:
    """How the steps run, never what they compute: batch size, learning rate and epochs stay the user's."""

    steps_per_execution: int
    jit_compile: bool
    eval_batch_size: int
