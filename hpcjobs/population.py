"""Population training: runs that differ only in seed and learning rate train as one vmapped JAX program.

Each member keeps the semantics of a run trained alone by train.py: its own initialisation (built from its
seed exactly as train_run builds it), its own split and standardisation, its own shuffling and learning
rate, its own history.csv (CSVLogger's columns), early stopping with the best weights restored, DIVERGED on a
non-finite loss, and its own result.json from plan.build_result. What is shared is one compilation of Keras'
own stateless train_step/test_step, vmapped over the members' stacked state, one `lax.scan` per epoch.

Compute side only, like train.py: the caller sets KERAS_BACKEND=jax before importing it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pandas as pd

from hpcjobs import data, history, models, scores, splits
from hpcjobs.layout import SweepDir, read_config, write_bytes, write_json
from hpcjobs.plan import (
    EVAL_BATCH_SIZE,
    Timing,
    build_result,
    choose_policy,
    diverged,
    now,
    population_cap,
    population_key,
    summarize_history,
)
from hpcjobs.results import recorded_status
from hpcjobs.settings import Execution, RunConfig
from hpcjobs.vocab import FINISHED, Objective, RunState

Tree = Any


@dataclass(frozen=True, eq=False)
class Members:
    """The members' own data, stacked on a leading axis: rows of the shared data and standardisation."""

    configs: list[RunConfig]
    train_rows: np.ndarray
    val_rows: np.ndarray
    test_rows: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @property
    def run_ids(self) -> list[str]:
        return [c.run_id for c in self.configs]

    @classmethod
    def split(cls, configs: list[RunConfig], x: np.ndarray, y: np.ndarray) -> Members:
        parts = []
        for config in configs:
            split = config.settings.data
            p = splits.partition(
                x, y, split.test_fraction, split.validation_fraction, config.seed, split.scale
            )
            parts.append((p.train, p.val, p.test, p.mean, p.std))
        train_rows, val_rows, test_rows, mean, std = (np.stack(column) for column in zip(*parts, strict=True))
        return cls(configs, train_rows, val_rows, test_rows, mean, std)


class Program:
    """The one compiled model whose stateless steps every member runs, and the stacked initial state."""

    def __init__(self, members: Members, n_features: int, n_classes: int) -> None:
        config = members.configs[0]
        self.model_cfg, self.train_cfg = config.settings.model, config.settings.train
        self.n_features, self.n_classes = n_features, n_classes
        self.batch_size = self.train_cfg.batch_size
        # Each member from its own seed, exactly as train_run builds a run; the last model serves them all.
        weights = []
        for config in members.configs:
            models.seed_everything(config.seed, "jax")
            self.model = self._build()
            weights.append(
                (
                    [v.value for v in self.model.trainable_variables],
                    [v.value for v in self.model.non_trainable_variables],
                )
            )
        self.execution = Execution(
            steps_per_execution=math.ceil(members.train_rows.shape[1] / self.batch_size),
            jit_compile=True,
            eval_batch_size=max(self.batch_size, EVAL_BATCH_SIZE),
        )
        models.compile_model(self.model, self.train_cfg, self.execution)
        batch = (np.zeros((1, n_features), np.float32), np.zeros((1, n_classes), np.float32))
        self.model._symbolic_build(data_batch=batch)  # the metrics and optimizer variables, as fit() does
        optimizer = self.model.optimizer
        optimizer.build(self.model.trainable_variables)
        self.metrics_reset = [v.value for v in self.model.metrics_variables]
        lr_index = [v.name for v in optimizer.variables].index("learning_rate")
        self.initial = (
            stack([w[0] for w in weights]),
            stack([w[1] for w in weights]),
            stack(
                [
                    [
                        jnp.asarray(c.settings.train.learning_rate, v.dtype) if i == lr_index else v.value
                        for i, v in enumerate(optimizer.variables)
                    ]
                    for c in members.configs
                ]
            ),
        )
        self.epoch = jax.jit(
            jax.vmap(self._epoch, in_axes=(0, 0, 0, 0, 0, 0, 0, None, None)), donate_argnums=0
        )
        self.test = jax.jit(jax.vmap(self._test, in_axes=(0, 0, 0, 0, None, None)))
        self.keep = jax.jit(jax.vmap(lambda take, new, old: where(take, new, old)))

    def _build(self) -> keras.Model:
        return models.build_model(
            self.n_features,
            self.n_classes,
            hidden=list(self.model_cfg.hidden),
            activation=self.model_cfg.activation,
            dropout=self.model_cfg.dropout,
        )

    def _steps(
        self, step: Callable[..., Any], carry: Tree, rows: jax.Array, size: int, member: tuple[jax.Array, ...]
    ) -> tuple[Tree, dict[str, jax.Array]]:
        """Keras' step over `rows` in batches of `size`, the last one shorter as in fit(); the logs of the
        last step are the epoch's, since the metrics accumulate from their reset."""
        mean, std, x, y = member

        def one(carry: Tree, batch_rows: jax.Array) -> tuple[Tree, dict[str, jax.Array]]:
            logs, carry = step(carry, ((x[batch_rows] - mean) / std, y[batch_rows]))
            return carry, logs

        full = rows.shape[0] // size
        logs: dict[str, jax.Array] = {}
        if full:
            carry, every = jax.lax.scan(one, carry, rows[: full * size].reshape(full, size))
            logs = jax.tree.map(lambda v: v[-1], every)
        if rows.shape[0] % size:
            carry, logs = one(carry, rows[full * size :])
        return carry, logs

    def _epoch(
        self,
        state: Tree,
        active: jax.Array,
        key: jax.Array,
        train_rows: jax.Array,
        val_rows: jax.Array,
        mean: jax.Array,
        std: jax.Array,
        x: jax.Array,
        y: jax.Array,
    ) -> tuple[Tree, dict[str, jax.Array], dict[str, jax.Array]]:
        """One member's epoch and validation; a member that stopped keeps its state."""
        shuffled = jax.random.permutation(key, train_rows)
        carry, logs = self._steps(
            self.model.train_step, (*state, self.metrics_reset), shuffled, self.batch_size, (mean, std, x, y)
        )
        state = where(active, tuple(carry[:3]), state)
        return state, logs, self._evaluate(state[0], state[1], val_rows, (mean, std, x, y))

    def _evaluate(
        self, tv: Tree, ntv: Tree, rows: jax.Array, member: tuple[jax.Array, ...]
    ) -> dict[str, Any]:
        size = self.execution.eval_batch_size
        return self._steps(self.model.test_step, (tv, ntv, self.metrics_reset), rows, size, member)[1]

    def _test(
        self, weights: Tree, rows: jax.Array, mean: jax.Array, std: jax.Array, x: jax.Array, y: jax.Array
    ) -> tuple[dict[str, Any], jax.Array]:
        tv, ntv = weights
        logs = self._evaluate(tv, ntv, rows, (mean, std, x, y))
        probabilities, _ntv = self.model.stateless_call(tv, ntv, (x[rows] - mean) / std, training=False)
        return logs, jnp.argmax(probabilities, axis=-1)


def stack(trees: Sequence[Tree]) -> Tree:
    # Stacked by NumPy on the host: jnp.stack compiles a program per leaf shape (2.7 s of 15 of them for the
    # digits example's deepest net on this CPU).
    return jax.tree.map(lambda *leaves: jnp.asarray(np.stack([np.asarray(v) for v in leaves])), *trees)


def where(condition: jax.Array, new: Tree, old: Tree) -> Tree:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


class Population:
    """The members' training in epochs: their history rows, early stopping, divergence, results, and the
    stacked checkpoint after every epoch."""

    def __init__(
        self, sweep: SweepDir, program: Program, members: Members, x: np.ndarray, y: np.ndarray, since: float
    ) -> None:
        self.sweep, self.program, self.members, self.since = sweep, program, members, since
        self.labels = y
        self.objective = Objective.for_metrics(program.train_cfg.metrics)
        # Epochs and patience may differ between members: they decide when a member stops, not the program.
        self.epochs = np.array([c.settings.train.epochs for c in members.configs])
        self.patience = np.array([c.settings.train.early_stopping_patience for c in members.configs])
        n = len(members.configs)
        self.device_data = (
            *(jnp.asarray(a) for a in (members.train_rows, members.val_rows, members.mean, members.std)),
            jnp.asarray(x),
            jnp.asarray(models.one_hot(y, program.n_classes)),
        )
        self.seeds = jnp.asarray([c.seed for c in members.configs], jnp.uint32)
        self.state = program.initial
        # Early stopping restores the best weights (train.py: restore_best_weights=True); a copy, since the
        # epoch function donates the state's buffers.
        self.best = jax.tree.map(jnp.array, self.state[:2]) if self.patience.any() else None
        self.next_epoch = 0
        self.active = np.ones(n, bool)
        self.diverged_epoch = np.zeros(n, int)
        self.last_loss = np.full(n, np.nan)  # each member's previous epoch (plan.diverged); NaN: none yet
        self.best_value, self.wait, self.has_best = np.full(n, np.nan), np.zeros(n, int), np.zeros(n, bool)
        self.seconds, self.session_epochs = np.zeros(n), np.zeros(n, int)
        self.startup = np.zeros(n)

    @property
    def checkpoint_path(self) -> Any:
        return self.sweep.population_checkpoint(self.members.run_ids)

    def train(self, finish: Callable[[np.ndarray, Population], None]) -> None:
        while self.active.any():
            finishing = self.run_epoch()
            if finishing.any():
                finish(finishing, self)
            if self.active.any():  # else every member's result says all that a resume needs
                self.save()
        self.checkpoint_path.unlink(missing_ok=True)

    def run_epoch(self) -> np.ndarray:
        """One epoch of every active member; returns the members that stopped at its end."""
        epoch, ran = self.next_epoch, self.active.copy()
        clock = time.perf_counter()
        keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(s), epoch))(self.seeds)
        self.state, logs, val_logs = self.program.epoch(self.state, jnp.asarray(ran), keys, *self.device_data)
        values = {
            k: np.asarray(v) for k, v in {**logs, **{f"val_{k}": v for k, v in val_logs.items()}}.items()
        }
        seconds = time.perf_counter() - clock
        first = ran & (self.session_epochs == 0)
        # Each member's share: of the start-up up to the end of its first epoch, then of each later epoch.
        self.startup[first] += (time.perf_counter() - self.since) / ran.sum()
        self.seconds[ran & ~first] += seconds / ran.sum()
        self.session_epochs[ran] += 1
        for i in np.flatnonzero(ran):
            append_row(
                self.sweep.history(self.members.run_ids[i]), epoch, {k: v[i] for k, v in values.items()}
            )
        losses = values["loss"].tolist()
        diverging = ran & np.array(
            [
                diverged(loss, last, self.program.n_classes)
                for loss, last in zip(losses, self.last_loss, strict=True)
            ]
        )
        self.last_loss[ran] = values["loss"][ran]
        self.diverged_epoch[diverging] = epoch + 1
        stopping = (
            self.early_stopping(ran, values[self.objective.name])
            if self.best is not None
            else np.zeros_like(ran)
        )
        self.active = ran & ~diverging & ~stopping
        self.next_epoch += 1
        self.active &= self.next_epoch < self.epochs
        print(
            f"population of {len(ran)} epoch {epoch + 1}/{self.epochs.max()}: {int(ran.sum())} trained, "
            f"{self.objective.name} {np.nanmedian(values[self.objective.name]):.4g} median ({seconds:.1f} s)",
            flush=True,
        )
        return ran & ~self.active

    def early_stopping(self, ran: np.ndarray, current: np.ndarray) -> np.ndarray:
        """keras.callbacks.EarlyStopping per member: the first epoch counts as an improvement, `patience`
        epochs without one stop the member; the best weights are kept for its test."""
        better = np.greater if self.objective.direction == "max" else np.less
        with np.errstate(invalid="ignore"):
            improved = ran & (~self.has_best | better(current, self.best_value))
        self.has_best |= improved
        self.best_value[improved] = current[improved]
        self.wait[ran] += 1
        self.wait[improved] = 0
        self.best = self.program.keep(jnp.asarray(improved), self.state[:2], self.best)
        waited = (self.patience > 0) & (self.wait >= self.patience)
        stopping: np.ndarray = ran & ~improved & waited & (self.next_epoch > 0)
        return stopping

    def save(self) -> None:
        """One file for the stacked state and the bookkeeping, written atomically after the epoch's rows."""
        meta = {
            "members": self.members.run_ids,
            "next_epoch": self.next_epoch,
            **{name: getattr(self, name).tolist() for name in CHECKPOINTED},
        }
        buffer = io.BytesIO()
        np.savez(buffer, *map(np.asarray, jax.tree.leaves((self.state, self.best))), meta=json.dumps(meta))
        write_bytes(self.checkpoint_path, buffer.getvalue())

    def restore(self, saved: dict[str, Any]) -> None:
        meta = json.loads(str(saved["meta"]))
        leaves, treedef = jax.tree.flatten((self.state, self.best))
        self.state, self.best = jax.tree.unflatten(
            treedef, [jnp.asarray(saved[f"arr_{i}"]) for i in range(len(leaves))]
        )
        self.next_epoch = int(meta["next_epoch"])
        for name in CHECKPOINTED:
            setattr(self, name, np.asarray(meta[name], getattr(self, name).dtype))
        # Killed after a member's result.json but before the checkpoint: it stays finished.
        self.active &= [recorded_status(self.sweep.result(r)) not in FINISHED for r in self.members.run_ids]


CHECKPOINTED = ("active", "diverged_epoch", "best_value", "wait", "has_best")


def append_row(path: Any, epoch: int, values: dict[str, np.ndarray]) -> None:
    """One history.csv row as keras.callbacks.CSVLogger writes it: epoch, then the sorted log names."""
    row = {"epoch": epoch, **{k: values[k].item() for k in sorted(values)}}
    header = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if header:
            writer.writeheader()
        writer.writerow(row)


def train_population(sweep: SweepDir, run_ids: Sequence[str], since: float | None = None) -> dict[str, str]:
    """Train runs of one population key together, as many at a time as memory allows (plan.population_cap);
    write each member's history.csv and result.json. `since`: the clock reading start-up began at (the
    process's start for its first training), counted as start-up with each member's first epoch.

    A checkpoint of the same members (a requeued task) resumes them; without one, members that already
    finished are left out and the others start from epoch 0.
    """
    configs = {r: read_config(sweep, r) for r in run_ids}
    keys = {population_key(c) for c in configs.values()}
    if len(keys) != 1 or None in keys:
        raise ValueError(
            "Expected the runs of one population (JAX, the same settings but seed and learning rate). "
            f"Received: {', '.join(run_ids)}"
        )
    backend = keras.backend.backend()
    if backend != "jax":
        raise RuntimeError(f"Expected the jax Keras backend for a population. Received: {backend!r}")
    first = configs[run_ids[0]].settings
    x, y = data.load(first.data.source)
    n_classes = data.check_labels(y, first.data.source)
    cap = population_cap(
        first.model.hidden, x.shape[1], n_classes, first.train.batch_size, available_memory()
    )
    for start in range(0, len(run_ids), cap):
        chunk = list(run_ids[start : start + cap])
        _train(sweep, chunk, [configs[r] for r in chunk], (x, y, n_classes), since or time.perf_counter())
        since = None
    return {r: recorded_status(sweep.result(r)) or RunState.FAILED for r in run_ids}


def _train(
    sweep: SweepDir,
    run_ids: list[str],
    configs: list[RunConfig],
    source: tuple[np.ndarray, np.ndarray, int],
    since: float,
) -> None:
    started = now()
    x, y, n_classes = source
    path = sweep.population_checkpoint(run_ids)
    saved = dict(np.load(path, allow_pickle=False)) if path.is_file() else None
    if saved is not None:
        meta = json.loads(str(saved["meta"]))
        members_ids, resumed = meta["members"], int(meta["next_epoch"])
    else:
        members_ids, resumed = [r for r in run_ids if recorded_status(sweep.result(r)) not in FINISHED], 0
    for run_id in members_ids:
        # Rows written after the checkpoint (killed between the members' writes) are of epochs trained again.
        if recorded_status(sweep.result(run_id)) not in FINISHED:
            history.cut(sweep.history(run_id), resumed)
    if not members_ids:
        return
    members = Members.split([c for c in configs if c.run_id in members_ids], x, y)
    device, capability = models.probe_device("jax")
    policy = choose_policy(configs[0].settings.train.precision, capability)
    # A clean slate as for a new program in train_run (the model that models.MODELS kept would not survive
    # it), before the dtype policy: clear_session resets it.
    models.MODELS.drop()
    keras.backend.clear_session()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        program = Program(members, x.shape[1], n_classes)
        population = Population(sweep, program, members, x, y, since)
        if saved is not None:
            population.restore(saved)
        population.train(Results("jax", device, policy, started).write)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def available_memory() -> int:
    """Bytes of the accelerator (JAX's limit for its buffers), else of the machine."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@dataclass(frozen=True)
class Results:
    """The result.json of members that stopped, tested on their best (early stopping) or last weights."""

    backend: str
    device: str
    policy: str
    started: str

    def write(self, which: np.ndarray, population: Population) -> None:
        program, members = population.program, population.members
        weights = population.state[:2]
        if population.best is not None:  # members with early stopping: their best epoch's weights
            weights = program.keep(jnp.asarray(population.patience > 0), population.best, weights)
        _, _, mean, std, x, y = population.device_data
        logs, predicted = program.test(weights, jnp.asarray(members.test_rows), mean, std, x, y)
        logs, predicted = {k: np.asarray(v) for k, v in logs.items()}, np.asarray(predicted)
        for i in np.flatnonzero(which):
            config = members.configs[i]
            run_id = config.run_id
            truth = population.labels[members.test_rows[i]]
            test = {
                **{k: v[i].item() for k, v in logs.items()},
                **scores.macro_scores(truth, predicted[i], program.n_classes),
            }
            result = build_result(
                config,
                summarize_history(pd.read_csv(population.sweep.history(run_id)), population.objective),
                diverged_epoch=int(population.diverged_epoch[i]) or None,
                test=test,
                params=program.model.count_params(),
                timing=Timing(
                    float(population.startup[i]),
                    float(population.seconds[i]),
                    max(int(population.session_epochs[i]) - 1, 0),
                    reused_model=False,
                ),
                n_train=members.train_rows.shape[1],
                precision_policy=self.policy,
                execution=program.execution,
                backend=self.backend,
                device=self.device,
                versions=models.versions(self.backend),
                started=self.started,
                finished=now(),
            )
            write_json(population.sweep.result(run_id), {**result, "population": len(members.configs)})
