"""What each key of a sweep file may hold: the choices, the value checks and their messages, the defaults.

The ground of the sweep file's vocabulary; spec.py reads a file against it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import DataSettings, ModelSettings, SlurmSettings, Table, TrainSettings
from .vocab import DATASETS

SCALES = ("standard", "none")
BACKENDS = ("tensorflow", "jax", "torch")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish", "linear", "leaky_relu")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad")
METRICS = (
    "categorical_accuracy",
    "accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "categorical_crossentropy",
    "top_k_categorical_accuracy",
    "auc",
)
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
POPULATION_MODES = ("auto", "off")
GPU_REQUESTS = ("gpus-per-node", "gres", "gpus")
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
TIME_RE = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")
DEFAULT_MAX_RUNS = 10_000


REQUIRED = object()


@dataclass(frozen=True)
class Setting:
    """One key of the sweep file: how to check a value, and its default (settings.py's)."""

    kind: str  # human-readable expected type, used in messages
    check: Callable[[Any], bool]
    sweepable: bool = True
    default: Any = REQUIRED


def _table(table: type[Table], **checks: Setting) -> dict[str, Setting]:
    """A table's keys in its dataclass's order, each checked as given and defaulting as the dataclass says."""
    found = dataclasses.fields(table)  # type: ignore[arg-type]
    defaults = {f.name: REQUIRED if f.default is dataclasses.MISSING else f.default for f in found}
    if list(checks) != list(defaults):
        raise TypeError(f"{table.__name__}: expected checks for {list(defaults)}. Received: {list(checks)}")
    return {name: dataclasses.replace(check, default=defaults[name]) for name, check in checks.items()}


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v)


def int_at_least(lo: int) -> Callable[[Any], bool]:
    return lambda v: is_int(v) and v >= lo


def _one_of(choices: Iterable[str]) -> Callable[[Any], bool]:
    options = tuple(choices)
    return lambda v: isinstance(v, str) and v in options


def _fraction(v: Any) -> bool:
    return _is_num(v) and 0 <= v < 1


def _hidden(v: Any) -> bool:
    return isinstance(v, list) and len(v) >= 1 and all(is_int(u) and u >= 1 for u in v)


def _metrics(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(m, str) and m in METRICS for m in v)


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


def _auto_or_int(v: Any) -> bool:
    return v == "auto" or int_at_least(1)(v)


def _opt_str(v: Any) -> bool:
    return isinstance(v, str)


def _source(v: Any) -> bool:
    """A built-in dataset, or a file whose kind the name says (the file itself is read at submit)."""
    return isinstance(v, str) and (v in DATASETS or Path(v).suffix.lower() in (".npz", ".csv"))


SCHEMA: dict[str, dict[str, Setting]] = {
    "data": _table(
        DataSettings,
        source=Setting(
            f"one of {', '.join(DATASETS)} or a path to a .npz/.csv file (relative to the sweep file)",
            _source,
        ),
        test_fraction=Setting("a number in (0, 1)", lambda v: _fraction(v) and v > 0),
        validation_fraction=Setting("a number in (0, 1)", lambda v: _fraction(v) and v > 0),
        scale=Setting(f"one of {', '.join(SCALES)}", _one_of(SCALES)),
    ),
    "model": _table(
        ModelSettings,
        hidden=Setting("a non-empty list of positive integers (units per layer)", _hidden),
        activation=Setting(f"one of {', '.join(ACTIVATIONS)}", _one_of(ACTIVATIONS)),
        dropout=Setting("a number in [0, 1)", _fraction),
        l2=Setting("a number ≥ 0", lambda v: _is_num(v) and v >= 0),
    ),
    "train": _table(
        TrainSettings,
        epochs=Setting("an integer ≥ 1", int_at_least(1)),
        batch_size=Setting("an integer ≥ 1", int_at_least(1)),
        optimizer=Setting(f"one of {', '.join(OPTIMIZERS)}", _one_of(OPTIMIZERS)),
        learning_rate=Setting("a number > 0", lambda v: _is_num(v) and v > 0),
        metrics=Setting(f"a list drawn from {', '.join(METRICS)}", _metrics),
        precision=Setting(f"one of {', '.join(PRECISIONS)}", _one_of(PRECISIONS)),
        early_stopping_patience=Setting("an integer ≥ 0 (0 = off)", int_at_least(0)),
        steps_per_execution=Setting('an integer ≥ 1 or "auto"', _auto_or_int),
        population=Setting('one of "auto", "off"', _one_of(POPULATION_MODES), False),
    ),
    "slurm": _table(
        SlurmSettings,
        partition=Setting("a partition name (empty: the cluster's default)", _opt_str, False),
        time=Setting(
            "a Slurm time such as 00:20:00 or 1-00:00:00",
            lambda v: isinstance(v, str) and bool(TIME_RE.match(v)),
            False,
        ),
        gpus_per_task=Setting("an integer ≥ 0", int_at_least(0), False),
        gpu_request=Setting(f"one of {', '.join(GPU_REQUESTS)}", _one_of(GPU_REQUESTS), False),
        cpus_per_task=Setting("an integer ≥ 1", int_at_least(1), False),
        mem_gb=Setting("a number > 0", lambda v: _is_num(v) and v > 0, False),
        array_parallelism=Setting("an integer ≥ 1", int_at_least(1), False),
        trials_per_gpu=Setting('an integer ≥ 1 or "auto"', _auto_or_int, False),
        runs_per_task=Setting('an integer ≥ 1 or "auto"', _auto_or_int, False),
        account=Setting("an account name", _opt_str, False),
        qos=Setting("a QOS name", _opt_str, False),
        constraint=Setting("a node feature constraint", _opt_str, False),
        additional=Setting('a list of extra sbatch options such as "--mail-type=END"', _str_list, False),
    ),
}
# The dotted keys that [sweep] and [space] may vary, with their checks.
SWEEPABLE = {f"{s}.{k}": v for s, keys in SCHEMA.items() for k, v in keys.items() if v.sweepable}
TOP_LEVEL = ("name", "backend", "max_runs", *SCHEMA, "sweep", "search", "space")
