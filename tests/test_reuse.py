"""Compile once per program: a run that trains the process's compiled model again gets the very history a
freshly built model gives, on TensorFlow and on JAX (each in its own interpreter: the backend is chosen at
Keras' import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpcjobs.layout import SweepDir, read_json, write_json
from hpcjobs.programs import by_program, in_program_order
from hpcjobs.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def config(run_id: str, source: str, seed: int, learning_rate: float, hidden: list[int]) -> dict:
    return {
        "run_id": run_id,
        "sweep": "reuse",
        "backend": "tensorflow",
        "seed": seed,
        "data": {"source": source, "test_fraction": 0.2, "validation_fraction": 0.2},
        "model": {"hidden": hidden, "activation": "relu", "dropout": 0.25},
        "train": {
            "epochs": 3,
            "batch_size": 8,
            "optimizer": "adam",
            "learning_rate": learning_rate,
            "metrics": ["categorical_accuracy"],
            "precision": "auto",
            "early_stopping_patience": 0,
        },
    }


# --- pure: program keys ----------------------------------------------------------------------------


def test_seed_learning_rate_epochs_and_patience_keep_the_program() -> None:
    base = config("a", "/d.npz", 0, 0.01, [8])
    other = config("b", "/d.npz", 7, 0.3, [8])
    other["train"].update(epochs=50, early_stopping_patience=5)
    assert Settings.from_dict(base).program_key() == Settings.from_dict(other).program_key()


@pytest.mark.parametrize(
    ("section", "name", "value"),
    [
        ("model", "hidden", [8, 8]),
        ("model", "dropout", 0.0),
        ("model", "activation", "tanh"),
        ("train", "batch_size", 16),
        ("train", "optimizer", "sgd"),
        ("train", "precision", "float32"),
        ("train", "metrics", ["accuracy"]),
        ("data", "source", "/e.npz"),
        ("data", "validation_fraction", 0.1),
    ],
)
def test_what_changes_the_compiled_program_changes_the_key(section: str, name: str, value: object) -> None:
    base = config("a", "/d.npz", 0, 0.01, [8])
    changed = json.loads(json.dumps(base))
    changed[section][name] = value
    assert Settings.from_dict(base).program_key() != Settings.from_dict(changed).program_key()


def test_runs_of_one_program_come_together_in_first_come_order() -> None:
    keys = {"a1": "A", "b1": "B", "a2": "A", "c1": "C", "b2": "B"}
    assert by_program(list(keys), keys) == [["a1", "a2"], ["b1", "b2"], ["c1"]]
    assert in_program_order(list(keys), keys) == ["a1", "a2", "b1", "b2", "c1"]


# --- real (tiny) trainings, one interpreter per backend --------------------------------------------

TRAIN_IN_TURN = """
import sys
from pathlib import Path
from hpcjobs import train
from hpcjobs.layout import SweepDir
for root, run_id in zip(sys.argv[1::2], sys.argv[2::2]):
    train.train_run(SweepDir(Path(root)), run_id)
"""


@pytest.mark.keras
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_reused_model_trains_exactly_as_a_fresh_one(tmp_path: Path, backend: str) -> None:
    pytest.importorskip(backend)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    source = str(tmp_path / "toy.npz")
    np.savez(source, x=x, y=(x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int))
    # X first (fresh), then Y (other seed, learning rate and weights: reuses X's model), then X again
    # (reuses the model Y trained, its optimizer state and dropout seeds advanced).
    runs = [("first", "x", 1, 0.01), ("other", "y", 2, 0.2), ("again", "x", 1, 0.01)]
    argv = []
    for folder, run_id, seed, learning_rate in runs:
        cfg = config(run_id, source, seed, learning_rate, [16, 8])
        cfg["backend"] = backend
        write_json(SweepDir(tmp_path / folder).config(run_id), cfg)
        argv += [str(tmp_path / folder), run_id]
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-c", TRAIN_IN_TURN, *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    results = {folder: read_json(SweepDir(tmp_path / folder).result(run)) for folder, run, *_ in runs}
    assert [results[f]["reused_model"] for f, *_ in runs] == [False, True, True]
    fresh, again = (pd.read_csv(SweepDir(tmp_path / f).history("x")) for f in ("first", "again"))
    assert len(fresh) == 3
    pd.testing.assert_frame_equal(fresh, again, check_exact=True)
    assert results["first"]["test"] == results["again"]["test"]
    other = pd.read_csv(SweepDir(tmp_path / "other").history("y"))
    assert not other["loss"].equals(fresh["loss"])
