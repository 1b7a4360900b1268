"""How a run trains and what it reports, decided without Keras: precision policy, steps per execution,
XLA, and the result.json built from the history. Pure, and importable anywhere."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .settings import Execution, RunConfig, TrainSettings
from .vocab import Objective, RunState

if TYPE_CHECKING:  # a history's frame is handed in: the sweep file's checks import this module on login nodes
    import pandas as pd

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


# The most training steps Keras runs per call into the backend. A bound keeps Slurm's USR2 (requeue before
# the time limit) from waiting for a whole epoch: Python runs signal handlers between those calls only.
MAX_STEPS_PER_EXECUTION = 128


# Validation, test and predict batches are at least this large: without gradients they are cheap in memory,
# and fewer, larger steps cost less dispatch. Means over samples do not depend on the batching.
EVAL_BATCH_SIZE = 4096


# A training loss above this many times the cross-entropy of a uniform guess among the classes, ln(K), that
# does not come down from one epoch to the next is a run whose weights have blown up. On TensorFlow such a
# run shows NaN/inf, but on JAX Keras clips the predicted probabilities to [1e-7, 1 - 1e-7], so the loss
# saturates at (share of confidently wrong answers) × 16.1 and stays finite. bench/divergence.py (Adam,
# losses per epoch, bench/RESULTS.md): at lr 1e10 JAX gives 6.19, 8.06, 8.06... on moons and 13.7, 14.5,
# 14.5... on digits where TensorFlow gives NaN. Runs that train stay below the bound (lr 0.1 and 0.03: at
# most 0.52 on moons, bound 1.39, and 1.21 on digits, bound 4.61) or come down: raw digits pixels
# (data.scale = "none", 256-128 units) at lr 1e-2 on JAX 7.17, 5.13, 1.91, 0.26. Needing a second epoch,
# a one-epoch run is judged on NaN/inf alone.
DIVERGED_LOSS_FACTOR = 2.0


def diverged(loss: float, previous: float, n_classes: int) -> bool:
    """An epoch's training loss that says the run diverged, the same rule on every backend: not a finite
    number, or above DIVERGED_LOSS_FACTOR × ln(n_classes) and not below the previous epoch's (`previous`
    NaN: no epoch before it in this process)."""
    if not math.isfinite(loss):
        return True
    return loss > DIVERGED_LOSS_FACTOR * math.log(n_classes) and loss >= previous


@dataclass(frozen=True)
class Timing:
    """Where a run's time went in this process: start-up (reading the data, building, tracing and compiling,
    and for a process's first run the framework's import too) up to the end of its first epoch, apart from
    the training of the later epochs; wall: from the start-up's beginning to the test scores."""

    startup_seconds: float | None
    training_seconds: float | None
    later_epochs: int
    reused_model: bool
    wall_seconds: float | None = None

    @classmethod
    def of(cls, since: float, epoch_ends: list[float], reused: bool, until: float) -> Timing:
        """From clock readings: when the start-up began, at each epoch's end, and after testing."""
        if not epoch_ends:
            return cls(None, None, 0, reused, until - since)
        first, last = epoch_ends[0], epoch_ends[-1]
        return cls(first - since, last - first, len(epoch_ends) - 1, reused, until - since)


def mlp_params(n_features: int, hidden: Sequence[int], n_classes: int) -> int:
    """Weights and biases of the lesson's MLP: Dense layers n_features -> hidden... -> n_classes."""
    sizes = [n_features, *hidden, n_classes]
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def backend_runs(backend: str, steps_per_execution: Any) -> bool:
    """Whether Keras on `backend` runs this many training steps per call into it. Checked here so that a
    sweep that would fail on every node is refused at submit; the training plan asks the same."""
    return backend != "torch" or steps_per_execution in ("auto", 1)


def choose_policy(requested: str, compute_capability: tuple[int, int] | None) -> str:
    """The dtype policy: an explicit request as is; "auto" from the GPU's compute capability.

    bfloat16 needs Ampere (8.0) or newer and needs no loss scaling; Volta/Turing (7.x) have float16 tensor
    cores; CPUs and older GPUs gain nothing from mixed precision.
    """
    if requested in POLICIES:
        return requested
    if requested != "auto":
        raise ValueError(f"Expected precision among auto, {', '.join(POLICIES)}. Received: {requested!r}")
    if compute_capability is None:
        return "float32"
    if compute_capability >= (8, 0):
        return "mixed_bfloat16"
    if compute_capability >= (7, 0):
        return "mixed_float16"
    return "float32"


def choose_steps_per_execution(requested: Any, steps_per_epoch: int, backend: str) -> int:
    """Training steps per call into the backend: "auto" runs up to MAX_STEPS_PER_EXECUTION at a time.

    Keras 3 calls the batch callbacks once per execution and runs a shorter last execution when the epoch's
    steps don't divide evenly, so epochs, and history rows, stay what they were. The torch backend runs one
    step at a time only.
    """
    if requested != "auto" and not (
        isinstance(requested, int) and not isinstance(requested, bool) and requested >= 1
    ):
        raise ValueError(
            f'Expected steps_per_execution to be "auto" or an integer ≥ 1. Received: {requested!r}'
        )
    if not backend_runs(backend, requested):
        raise ValueError(
            f"Expected steps_per_execution 1 with the {backend} backend. Received: {requested!r}"
        )
    if backend == "torch":
        return 1
    return min(steps_per_epoch, MAX_STEPS_PER_EXECUTION) if requested == "auto" else int(requested)


def choose_jit_compile(backend: str) -> bool:
    """XLA on JAX. Not on TensorFlow: seed_everything turns op determinism on, under which Keras refuses XLA
    (keras/src/trainers/trainer.py, model_supports_jit). Not on torch: there it means torch.compile, whose
    compile time a small MLP does not win back."""
    return backend == "jax"


def plan_execution(train: TrainSettings, backend: str, n_train: int) -> Execution:
    """The fast path for a run; train.steps_per_execution may pin the step count."""
    batch_size = train.batch_size
    return Execution(
        steps_per_execution=choose_steps_per_execution(
            train.steps_per_execution, math.ceil(n_train / batch_size), backend
        ),
        jit_compile=choose_jit_compile(backend),
        eval_batch_size=max(batch_size, EVAL_BATCH_SIZE),
    )


# Beyond this many members compilation and one epoch's latency grow for no further gain per member.
MAX_POPULATION = 256


def population_key(config: RunConfig) -> str | None:
    """What a run shares with the other members of its population: its compiled program (programs.py; the
    seed, learning rate, epochs and patience may differ), on JAX unless train.population is "off"; None for
    a run that trains alone."""
    if config.backend != "jax" or config.settings.train.population == "off":
        return None
    # What the population program does not do: a halving rung continues from its Keras backup, and the
    # stacked program neither penalizes weights nor skips the standardization.
    settings = config.settings
    if config.keep_backup or settings.model.l2 or settings.data.scale == "none":
        return None
    return settings.program_key()


def populations(configs: Mapping[str, RunConfig], cap: int) -> list[list[str]]:
    """The runs of a lane as populations, in order of first appearance: runs of one key together, at most
    `cap` per population; a run without a key is a population of one."""
    groups: dict[str, list[str]] = {}
    for run_id, config in configs.items():
        key = population_key(config)
        groups.setdefault(run_id if key is None else key, []).append(run_id)
    return [members[i : i + cap] for members in groups.values() for i in range(0, len(members), max(cap, 1))]


def population_cap(
    hidden: Sequence[int], n_features: int, n_classes: int, batch_size: int, memory: int
) -> int:
    """How many members fit in half of `memory` bytes: per member, float32 weights six times over (weights,
    best weights, gradients, two optimizer moments, the update) and the activations of one training batch
    and one evaluation batch, forward and backward."""
    activations = 3 * (batch_size + EVAL_BATCH_SIZE) * (n_features + sum(hidden) + n_classes)
    per_member = 4 * (6 * mlp_params(n_features, hidden, n_classes) + activations)
    return max(1, min(MAX_POPULATION, memory // 2 // per_member))


def summarize_history(history: pd.DataFrame, objective: Objective) -> dict[str, Any]:
    """epochs_done, best_epoch (1-based; None when the objective was never a number), the objective,
    best (val_* at the best epoch) and final_loss from history.csv.

    A resumed run may repeat an epoch (killed after logging it but before backing it up): the last row of
    each epoch wins.
    """
    rows = history.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)
    values = rows[objective.name].tolist() if objective.name in rows else []
    index = objective.best_epoch(values)
    if index is not None:
        best_row = rows.loc[index]
        best_epoch: int | None = int(best_row["epoch"]) + 1
        best = {name: _finite(best_row[name]) for name in rows.columns if name.startswith("val_")}
    else:
        best_epoch, best = None, {}
    return {
        "epochs_done": len(rows),
        "best_epoch": best_epoch,
        "monitor": objective.name,
        "direction": objective.direction,
        "best": best,
        "final_loss": _finite(rows["loss"].iloc[-1]) if len(rows) else None,
    }


def build_result(
    config: RunConfig,
    summary: dict[str, Any],
    *,
    diverged_epoch: int | None,
    test: dict[str, float],
    params: int,
    timing: Timing,
    n_train: int,
    precision_policy: str,
    execution: Execution,
    backend: str,
    device: str,
    versions: dict[str, str],
    started: str,
    finished: str,
) -> dict[str, Any]:
    """The result.json content. NaN/inf become null: the JSON stays strict and a diverged run stays readable.

    Throughput covers the later epochs of this session only: the first one pays for tracing and compiling,
    and a resumed run trained fewer epochs in this process. One epoch alone gives no throughput.
    """
    later, seconds = timing.later_epochs, timing.training_seconds
    return {
        "run_id": config.run_id,
        "status": RunState.DIVERGED if diverged_epoch is not None else RunState.COMPLETED,
        "epochs": config.settings.train.epochs,
        **summary,
        "test": {name: _finite(value) for name, value in test.items()},
        "params": params,
        "seconds_per_epoch": seconds / later if later and seconds else None,
        "samples_per_second": n_train * later / seconds if later and seconds else None,
        "startup_seconds": timing.startup_seconds,
        "training_seconds": seconds,
        "reused_model": timing.reused_model,
        "wall_seconds": timing.wall_seconds,
        "precision_policy": precision_policy,
        "execution": asdict(execution),
        "backend": backend,
        "device": device,
        "versions": versions,
        "seed": config.seed,
        "diverged_epoch": diverged_epoch,
        "started": started,
        "finished": finished,
        "config": config.to_dict(),
    }


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
