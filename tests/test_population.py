"""Population training (hpcjobs/population.py): which runs train together, and, on JAX in a subprocess (Keras
picks its backend once per process and the other Keras tests use TensorFlow), that every member keeps the
semantics of a run trained alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hpcjobs import plan, worker
from hpcjobs.layout import SweepDir, read_json, write_json
from hpcjobs.settings import RunConfig
from tests.conftest import REPO

METRICS = ["categorical_accuracy", "mean_squared_error", "mean_absolute_error"]


def config(run_id: str, seed: int, source: str, **train: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "sweep": "toy",
        "backend": "jax",
        "seed": seed,
        "data": {"source": source, "test_fraction": 0.2, "validation_fraction": 0.1, "scale": "standard"},
        "model": {"hidden": [8, 4], "activation": "relu", "dropout": 0.0, "l2": 0.0},
        "train": {
            "epochs": 2,
            "batch_size": 16,
            "optimizer": "adam",
            "learning_rate": 0.01,
            "metrics": METRICS,
            "precision": "auto",
            "early_stopping_patience": 0,
            "steps_per_execution": "auto",
            "population": "auto",
            **train,
        },
    }


# --- which runs train together (pure) ------------------------------------------------------------


def key(run_id: str, seed: int, source: str, **train: Any) -> str | None:
    return plan.population_key(RunConfig.from_dict(config(run_id, seed, source, **train)))


def test_population_key_ignores_seed_and_learning_rate_only():
    base = RunConfig.from_dict(config("a", 0, "moons"))
    assert plan.population_key(base) == key("b", 7, "moons", learning_rate=0.3)
    # Epochs and patience decide when a member stops, not what the program computes.
    assert plan.population_key(base) == key("c", 0, "moons", epochs=3, early_stopping_patience=2)
    assert plan.population_key(base) != key("c", 0, "moons", batch_size=32)
    assert plan.population_key(base) != plan.population_key(
        replace(base, settings=base.settings.with_value("model.hidden", [8]))
    )
    assert key("d", 0, "moons", population="off") is None
    assert plan.population_key(replace(base, backend="tensorflow")) is None


def test_populations_group_by_key_in_order_and_respect_the_cap():
    configs = {
        "a0": config("a0", 0, "moons"),
        "b0": config("b0", 0, "moons", batch_size=32),
        "a1": config("a1", 1, "moons", learning_rate=0.1),
        "off": config("off", 0, "moons", population="off"),
        "a2": config("a2", 2, "moons"),
        "b1": config("b1", 1, "moons", batch_size=32),
    }
    configs = {run_id: RunConfig.from_dict(c) for run_id, c in configs.items()}
    assert plan.populations(configs, 8) == [["a0", "a1", "a2"], ["b0", "b1"], ["off"]]
    assert plan.populations(configs, 2) == [["a0", "a1"], ["a2"], ["b0", "b1"], ["off"]]


def test_population_cap_from_memory():
    lesson = ([256, 128], 784, 10, 128)
    assert plan.population_cap(*lesson, memory=80 * 2**30) == plan.MAX_POPULATION
    assert 1 < plan.population_cap(*lesson, memory=2**30) < plan.MAX_POPULATION
    assert plan.population_cap(*lesson, memory=2**20) == 1  # never zero: a run always trains


def test_a_lane_trains_its_populations_together_and_other_runs_alone(tmp_path, monkeypatch):
    sweep = SweepDir(tmp_path)
    configs = [
        config("a0", 0, "moons"),
        config("a1", 1, "moons"),
        config("off", 0, "moons", population="off"),
    ]
    for c in configs:
        write_json(sweep.config(c["run_id"]), c)
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(worker, "run_one", lambda s, r: calls.append((r,)) or "COMPLETED")
    monkeypatch.setattr(
        worker, "run_population", lambda s, rs: calls.append(tuple(rs)) or dict.fromkeys(rs, "DIVERGED")
    )
    outcomes = worker.run_lane(sweep, ["off", "a0", "a1"])
    assert calls == [("off",), ("a0", "a1")]
    assert outcomes == {"off": "COMPLETED", "a0": "DIVERGED", "a1": "DIVERGED"}


# --- training on JAX, in subprocesses --------------------------------------------------------------


def run_python(code: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_sweep(root: Path, configs: list[dict[str, Any]]) -> SweepDir:
    sweep = SweepDir(root)
    for c in configs:
        write_json(sweep.config(c["run_id"]), c)
    return sweep


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict[str, SweepDir]:
    """Tiny seeded sweeps (64 samples), trained by worker.run_lane in one JAX process; the last one is killed
    (os._exit, as a node failure would) right after its second epoch's checkpoint."""
    root = tmp_path_factory.mktemp("population")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    source = str(root / "toy.npz")
    np.savez(source, x=x, y=(x[:, 0] + x[:, 1] > 0).astype(int))
    sweeps = {
        "plain": write_sweep(
            root / "plain",
            [*(config(f"s{s}", s, source) for s in range(3)), config("long", 3, source, epochs=3)],
        ),
        "diverged": write_sweep(
            root / "diverged",
            [
                config("ok0", 0, source),
                config("bad", 1, source, learning_rate=1e30),
                config("ok2", 2, source),
            ],
        ),
        "early": write_sweep(
            root / "early",
            [
                config(f"e{s}", s, source, epochs=30, early_stopping_patience=2, learning_rate=lr)
                for s, lr in enumerate([0.3, 0.003, 0.001, 0.1])
            ]
            + [config("e4", 4, source, epochs=6, early_stopping_patience=0, learning_rate=0.3)],
        ),
        "bf16": write_sweep(
            root / "bf16", [config(f"s{s}", s, source, precision="mixed_bfloat16") for s in range(2)]
        ),
        "chunked": write_sweep(root / "chunked", [config(f"c{s}", s, source) for s in range(3)]),
        "whole": write_sweep(root / "whole", [config(f"r{s}", s, source, epochs=4) for s in range(2)]),
        "killed": write_sweep(root / "killed", [config(f"r{s}", s, source, epochs=4) for s in range(2)]),
    }
    lanes = {name: sorted(p.name for p in (sweep.root / "runs").iterdir()) for name, sweep in sweeps.items()}
    proc = run_python(
        f"""
        import os
        from pathlib import Path
        from hpcjobs import population, worker
        from hpcjobs.layout import SweepDir
        lanes = {lanes!r}
        for name in ("plain", "diverged", "early", "bf16"):
            worker.run_lane(SweepDir(Path({str(root)!r}) / name), lanes[name])
        save, saves = population.Population.save, []
        population.Population.save = lambda self: (saves.append(self.next_epoch), save(self))[1]
        worker.run_lane(SweepDir(Path({str(root)!r}) / "whole"), lanes["whole"])
        population.Population.save = save
        (Path({str(root)!r}) / "whole-saves.json").write_text(repr(saves))
        # Memory for two members of this model (plan.population_cap): three train as two populations.
        population.available_memory = lambda: 3_200_000
        worker.run_lane(SweepDir(Path({str(root)!r}) / "chunked"), lanes["chunked"])
        save = population.Population.save
        def save_then_die(self):
            save(self)
            if self.next_epoch == 2:
                os._exit(3)
        population.Population.save = save_then_die
        worker.run_lane(SweepDir(Path({str(root)!r}) / "killed"), lanes["killed"])
        """
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    return sweeps


def history(sweep: SweepDir, run_id: str) -> pd.DataFrame:
    return pd.read_csv(sweep.history(run_id))


@pytest.mark.keras
def test_each_member_writes_the_history_and_result_of_a_run_trained_alone(toy):
    sweep = toy["plain"]
    for run_id in ("s0", "s1", "s2"):
        rows = history(sweep, run_id)
        # keras.callbacks.CSVLogger's columns: epoch, then the sorted training and validation log names.
        assert list(rows.columns) == [
            "epoch",
            *sorted(["loss", *METRICS, "val_loss", *(f"val_{m}" for m in METRICS)]),
        ]
        assert rows["epoch"].tolist() == [0, 1]
        result = read_json(sweep.result(run_id))
        assert result["status"] == "COMPLETED" and result["epochs_done"] == 2 and result["population"] == 4
        assert result["best_epoch"] in (1, 2) and result["monitor"] == "val_categorical_accuracy"
        best = rows.iloc[result["best_epoch"] - 1]
        assert result["best"]["val_loss"] == pytest.approx(best["val_loss"])
        assert set(result["test"]) == {
            "loss",
            *METRICS,
            "accuracy",
            "precision_macro",
            "recall_macro",
            "f1_macro",
        }
        assert (
            result["samples_per_second"] > 0
            and result["backend"] == "jax"
            and result["seed"] == int(run_id[1])
        )
        assert result["config"] == read_json(sweep.config(run_id))
    assert history(sweep, "long")["epoch"].tolist() == [0, 1, 2]  # its own number of epochs
    assert read_json(sweep.result("long"))["epochs_done"] == 3
    # Own initialisation, split and shuffling: no two members learn the same.
    losses = {history(sweep, r)["loss"].iloc[-1] for r in ("s0", "s1", "s2")}
    assert len(losses) == 3
    assert not (sweep.root / "populations").exists() or not any((sweep.root / "populations").iterdir())


@pytest.mark.keras
def test_no_checkpoint_is_written_once_every_member_has_finished(toy):
    """4 epochs: checkpoints after the first three; after the last, the results are all a resume needs."""
    assert (toy["whole"].root.parent / "whole-saves.json").read_text() == "[1, 2, 3]"
    assert not any((toy["whole"].root / "populations").iterdir())


@pytest.mark.keras
def test_the_precision_policy_applies_to_the_population(toy):
    """A mixed_bfloat16 population computes in bfloat16 (it once said so but computed in float32)."""
    mixed, plain = history(toy["bf16"], "s0"), history(toy["plain"], "s0")
    assert read_json(toy["bf16"].result("s0"))["precision_policy"] == "mixed_bfloat16"
    assert not np.array_equal(mixed["loss"], plain["loss"])
    assert np.allclose(mixed["loss"], plain["loss"], atol=0.05)


@pytest.mark.keras
def test_a_population_larger_than_memory_allows_trains_in_parts(toy):
    assert plan.population_cap([8, 4], 2, 2, 16, 3_200_000) == 2
    sizes = [read_json(toy["chunked"].result(f"c{s}"))["population"] for s in range(3)]
    assert sizes == [2, 2, 1]


@pytest.mark.keras
def test_a_member_whose_loss_is_not_finite_is_diverged_and_the_others_go_on(toy):
    sweep = toy["diverged"]
    bad = read_json(sweep.result("bad"))
    assert bad["status"] == "DIVERGED" and bad["diverged_epoch"] == 1
    assert len(history(sweep, "bad")) == 1  # the row of the epoch that diverged, as DivergenceStop leaves it
    for run_id in ("ok0", "ok2"):
        assert read_json(sweep.result(run_id))["status"] == "COMPLETED"
        rows = history(sweep, run_id)
        assert len(rows) == 2 and np.isfinite(rows["loss"]).all()


@pytest.mark.keras
def test_early_stopping_stops_a_member_not_the_population(toy):
    sweep = toy["early"]
    lengths = {}
    for run_id in ("e0", "e1", "e2", "e3", "e4"):
        result = read_json(sweep.result(run_id))
        rows = history(sweep, run_id)
        lengths[run_id] = len(rows)
        assert result["status"] == "COMPLETED" and result["epochs_done"] == len(rows)
        if len(rows) < int(read_json(sweep.config(run_id))["train"]["epochs"]):
            # keras.callbacks.EarlyStopping: `patience` epochs without a better val accuracy than the best.
            best = rows["val_categorical_accuracy"].iloc[: len(rows) - 2].max()
            assert (rows["val_categorical_accuracy"].iloc[-2:] <= best).all()
    patient = [lengths[r] for r in ("e0", "e1", "e2", "e3")]
    assert min(patient) < max(patient), lengths  # members with early stopping stopped at different epochs
    assert len(history(sweep, "e4")) == 6  # without early stopping: its own epochs, whatever the others do


@pytest.mark.keras
def test_a_killed_population_resumes_with_every_epoch_once_and_as_if_never_stopped(toy):
    killed, whole = toy["killed"], toy["whole"]
    assert [len(history(killed, r)) for r in ("r0", "r1")] == [2, 2]
    assert not killed.result("r0").exists()
    proc = run_python(
        f"""
        from pathlib import Path
        from hpcjobs import worker
        from hpcjobs.layout import SweepDir
        print(worker.run_lane(SweepDir(Path({str(killed.root)!r})), ["r0", "r1"]))
        """
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "population of 2 epoch 3/4" in proc.stdout and "epoch 1/4" not in proc.stdout
    for run_id in ("r0", "r1"):
        resumed, uninterrupted = history(killed, run_id), history(whole, run_id)
        assert resumed["epoch"].tolist() == [0, 1, 2, 3]
        pd.testing.assert_frame_equal(resumed, uninterrupted)
        result = read_json(killed.result(run_id))
        assert result["status"] == "COMPLETED" and result["epochs_done"] == 4
    assert not any((killed.root / "populations").iterdir())


@pytest.mark.keras
def test_a_population_killed_between_its_members_history_rows_resumes_with_every_epoch_once(toy, tmp_path):
    """Killed after r0's row of the third epoch and before r1's: the resume trains the third epoch again
    from the second's checkpoint, and r0 has its row once, as if never stopped."""
    whole = toy["whole"]
    torn = write_sweep(tmp_path / "torn", [read_json(whole.config(r)) for r in ("r0", "r1")])
    lane = f"worker.run_lane(SweepDir(Path({str(torn.root)!r})), ['r0', 'r1'])"
    killed = run_python(
        f"""
        import os
        from pathlib import Path
        from hpcjobs import population, worker
        from hpcjobs.layout import SweepDir
        append = population.append_row
        def append_unless_r1_at_epoch_2(path, epoch, values):
            if epoch == 2 and path.parent.name == "r1":
                os._exit(3)
            append(path, epoch, values)
        population.append_row = append_unless_r1_at_epoch_2
        {lane}
        """
    )
    assert killed.returncode == 3, killed.stdout + killed.stderr
    assert [len(history(torn, r)) for r in ("r0", "r1")] == [3, 2]
    resumed = run_python(
        f"""
        from pathlib import Path
        from hpcjobs import worker
        from hpcjobs.layout import SweepDir
        {lane}
        """
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for run_id in ("r0", "r1"):
        pd.testing.assert_frame_equal(history(torn, run_id), history(whole, run_id))
        assert read_json(torn.result(run_id))["epochs_done"] == 4


@pytest.mark.keras
def test_members_match_independent_keras_fits_statistically(tmp_path):
    """16 seeds of the digits MLP: as one population, and as 16 train.py runs (train.population = "off").
    The mean final validation accuracy agrees within the independent fits' standard error."""
    seeds = range(16)

    def digits(run_id: str, seed: int, population: str) -> dict[str, Any]:
        c = config(run_id, seed, "digits", epochs=8, batch_size=64, learning_rate=3e-3, population=population)
        return {**c, "model": {**c["model"], "hidden": [32]}}

    together = write_sweep(tmp_path / "together", [digits(f"p{s}", s, "auto") for s in seeds])
    alone = write_sweep(tmp_path / "alone", [digits(f"a{s}", s, "off") for s in seeds])
    proc = run_python(
        f"""
        from pathlib import Path
        from hpcjobs import worker
        from hpcjobs.layout import SweepDir
        worker.run_lane(SweepDir(Path({str(together.root)!r})), {[f"p{s}" for s in seeds]!r})
        worker.run_lane(SweepDir(Path({str(alone.root)!r})), {[f"a{s}" for s in seeds]!r})
        """
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    final = {
        name: np.array([history(sweep, f"{name[0]}{s}")["val_categorical_accuracy"].iloc[-1] for s in seeds])
        for name, sweep in (("p", together), ("a", alone))
    }
    assert read_json(together.result("p0"))["population"] == 16 and "population" not in read_json(
        alone.result("a0")
    )
    standard_error = final["a"].std(ddof=1) / np.sqrt(len(final["a"]))
    assert abs(final["p"].mean() - final["a"].mean()) <= standard_error, (final, standard_error)
    assert final["p"].mean() > 0.8  # both learned: the digits MLP reaches ~0.9 in 8 epochs
    print(json.dumps({k: [round(v.mean(), 4), round(v.std(ddof=1), 4)] for k, v in final.items()}))


@pytest.mark.keras
def test_a_jax_sweep_trains_as_populations_and_reads_like_runs_alone(tmp_path):
    """Through the local executor: status and collect show the members like any runs; `resubmit` of one
    failed member trains it alone (train.py) and it ends like the others."""
    from click.testing import CliRunner

    from hpcjobs.cli import cli

    sweep_file = tmp_path / "pop.toml"
    sweep_file.write_text(
        'name = "pop"\nbackend = "jax"\n[data]\nsource = "moons"\n[model]\nhidden = [8]\n'
        '[train]\nepochs = 2\n[sweep]\n"train.learning_rate" = [0.01, 0.03]\nseeds = [0, 1]\n'
    )
    results = str(tmp_path / "results")
    runner = CliRunner()

    def wait_for_status() -> dict[str, Any]:
        for _ in range(600):
            st = json.loads(runner.invoke(cli, ["status", "pop", "--results", results, "--json"]).output)
            if set(st["counts"]) <= {"COMPLETED", "DIVERGED", "FAILED"}:
                return st
            time.sleep(1)
        raise AssertionError(st)

    submitted = runner.invoke(
        cli, ["submit", str(sweep_file), "--executor", "local", "--results", results, "--wait"]
    )
    assert submitted.exit_code == 0, submitted.output
    st = wait_for_status()
    assert st["counts"] == {"COMPLETED": 4}
    assert {(r["epochs_done"], r["epochs"]) for r in st["runs"]} == {(2, 2)}
    sweep = SweepDir(Path(results) / "pop")
    ids = sorted(p.name for p in (sweep.root / "runs").iterdir())
    assert all(read_json(sweep.result(r)).get("population", 1) >= 2 for r in ids)
    collected = json.loads(
        runner.invoke(cli, ["collect", "pop", "--results", results, "--format", "json"]).output
    )
    assert [(r["runs_finished"], r["runs_total"]) for r in collected] == [(2, 2), (2, 2)]
    assert all(0.5 < r["best_val_categorical_accuracy_mean"] <= 1.0 for r in collected)

    # One member fails after the fact (as if its node had died): resubmit trains it alone, from epoch 0.
    failed = ids[0]
    write_json(sweep.result(failed), {"run_id": failed, "status": "FAILED", "error": "node died", "hint": ""})
    resubmitted = runner.invoke(cli, ["resubmit", "pop", "--results", results])
    assert resubmitted.exit_code == 0, resubmitted.output
    assert wait_for_status()["counts"] == {"COMPLETED": 4}
    again = read_json(sweep.result(failed))
    assert again["status"] == "COMPLETED" and "population" not in again
    assert history(sweep, failed)["epoch"].tolist() == [0, 1]
