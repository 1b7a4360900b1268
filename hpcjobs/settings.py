"""A run's settings as typed, frozen values: the sweep file's [data], [model], [train] and [slurm] tables with
their defaults (schema.py checks what a user writes against them), and how a run's steps execute.

JSON holds them as objects of the same keys in the same order, lists where these hold tuples: `to_dict` and
`from_dict` are the one conversion, so config.json and manifest.json keep their bytes. Ground floor: it
imports nothing of hpcjobs, so every module can take these types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

T = TypeVar("T", bound="Table")


class Table:
    """One table of settings: each key of it a field, in the sweep file's order."""

    def to_dict(self) -> dict[str, Any]:
        # The instance's own attributes are its fields, in their order (fields() costs more, per call).
        return {name: _plain(value) for name, value in vars(self).items()}

    @classmethod
    def from_dict(cls: type[T], table: Mapping[str, Any]) -> T:
        """From a table as JSON or TOML gives it; a key an older hpcjobs did not write takes its default."""
        return cls(**{name: _frozen(value) for name, value in table.items()})


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class DataSettings(Table):
    source: str  # a built-in dataset or a data file's absolute path
    test_fraction: float = 0.2
    # Best epoch and early stopping need a validation set.
    validation_fraction: float = 0.1
    # Features standardized with the training split's mean and std (never the held-out parts'), or as is.
    scale: str = "standard"


@dataclass(frozen=True)
class ModelSettings(Table):
    hidden: tuple[int, ...] = (64, 32)
    activation: str = "relu"
    dropout: float = 0.0
    # The weight penalty scikit-learn's MLPClassifier applies by default (alpha), on the Dense kernels.
    l2: float = 0.0


@dataclass(frozen=True)
class TrainSettings(Table):
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    metrics: tuple[str, ...] = ("categorical_accuracy", "mean_squared_error", "mean_absolute_error")
    precision: str = "auto"
    early_stopping_patience: int = 0  # 0: off
    # Training steps per call into the backend: the science is unchanged, the Python overhead is not.
    steps_per_execution: int | str = "auto"
    # On JAX, runs differing only in seed and learning rate train as one vmapped program (population.py).
    population: str = "auto"


@dataclass(frozen=True)
class SlurmSettings(Table):
    partition: str = ""  # empty: the cluster's default
    time: str = "00:20:00"
    gpus_per_task: int = 1
    gpu_request: str = "gpus-per-node"
    cpus_per_task: int = 2
    mem_gb: float = 8
    array_parallelism: int = 16
    # Packing small trainings: K processes sharing one GPU, each training M runs in turn.
    trials_per_gpu: int | str = "auto"
    runs_per_task: int | str = "auto"
    account: str = ""
    qos: str = ""
    constraint: str = ""
    additional: tuple[str, ...] = ()

    @property
    def parallel(self) -> int:
        """Processes per task sharing its GPU: trials_per_gpu, once packing.pack has resolved "auto"."""
        return _resolved(self.trials_per_gpu, "trials_per_gpu")

    @property
    def task_size(self) -> int:
        """Runs per array task: trials_per_gpu × runs_per_task, once packing.pack has resolved them."""
        return self.parallel * _resolved(self.runs_per_task, "runs_per_task")


def _resolved(value: int | str, name: str) -> int:
    if isinstance(value, str):
        raise ValueError(f'Expected slurm.{name} resolved by packing.pack. Received: "{value}"')
    return value


# Settings that do not change the compiled program: the training step reads them, it is not built from them.
NOT_IN_PROGRAM = frozenset(
    {"train.learning_rate", "train.epochs", "train.early_stopping_patience", "train.population"}
)


@dataclass(frozen=True)
class Settings:
    """What a run trains: its data, model and training settings (the seed apart)."""

    data: DataSettings
    model: ModelSettings
    train: TrainSettings

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, tables: Mapping[str, Mapping[str, Any]]) -> Settings:
        return cls(
            DataSettings.from_dict(tables["data"]),
            ModelSettings.from_dict(tables["model"]),
            TrainSettings.from_dict(tables["train"]),
        )

    def program_key(self) -> str:
        """The settings that decide the run's compiled program, as canonical JSON.

        Two runs with one key differ only in numbers the compiled training step is fed (the seed, hence the
        initial weights and the data split; the learning rate, an optimizer variable; the number of epochs;
        early stopping, a callback): one process can build and compile the model once and train all of them.
        """
        kept = {
            section: {
                name: value for name, value in table.items() if f"{section}.{name}" not in NOT_IN_PROGRAM
            }
            for section, table in self.to_dict().items()
        }
        return json.dumps(kept, sort_keys=True, separators=(",", ":"))

    def with_value(self, key: str, value: Any) -> Settings:
        """These settings with one setting, a dotted key such as "model.hidden", set to `value`."""
        section, name = key.split(".")
        return replace(self, **{section: replace(getattr(self, section), **{name: _frozen(value)})})


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
    settings: Settings

    def to_dict(self) -> dict[str, Any]:
        """The run's row in manifest.json."""
        return {
            "run_id": self.run_id,
            "config_id": self.config_id,
            "seed": self.seed,
            "settings": self.settings.to_dict(),
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Run:
        return cls(row["run_id"], row["config_id"], row["seed"], Settings.from_dict(row["settings"]))

    def config(self, sweep_name: str, backend: str) -> RunConfig:
        """What the training task reads from config.json."""
        return RunConfig(self.run_id, sweep_name, backend, self.seed, self.settings)


@dataclass(frozen=True)
class RunConfig:
    """A run as its training reads it: config.json."""

    run_id: str
    sweep: str
    backend: str
    seed: int
    settings: Settings
    keep_backup: bool = False  # a halving search's rung: the run goes on from its backup at the next rung

    def to_dict(self) -> dict[str, Any]:
        out = {"run_id": self.run_id, "sweep": self.sweep, "backend": self.backend, "seed": self.seed}
        return {**out, **self.settings.to_dict(), **({"keep_backup": True} if self.keep_backup else {})}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> RunConfig:
        return cls(
            config["run_id"],
            config["sweep"],
            config["backend"],
            config["seed"],
            Settings.from_dict(config),
            bool(config.get("keep_backup")),
        )
