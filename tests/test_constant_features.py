"""A feature constant in a run's train rows but not in its other rows, through every engine: the TensorFlow
fit, the JAX fit and the JAX population each standardize it with std 1 (as scikit-learn's StandardScaler
does), so its validation loss stays that of an ordinary run. The scaling had been derived from all rows'
moments less the others', which left such a feature a std of ~1e-8 and its validation values ~1e9: mnist5k's
runs had val_loss of 1e3-1e6 while their accuracy looked normal."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpcjobs import data, splits
from hpcjobs.layout import SweepDir, write_json
from tests.test_population import config, run_python

pytestmark = pytest.mark.keras

SEEDS = (0, 1)
FRACTIONS = (0.2, 0.1)  # test, validation: as tests.test_population.config splits
PIXELS = 8


def source_with_a_feature_constant_in_train(path: Path) -> str:
    """64 separable rows and 8 features like MNIST's border pixels: 0 in every train row of both seeds, 0-1
    in some other rows (how far the old derivation cancelled varied by feature: some came out exactly 0)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2 + PIXELS))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    trains = [splits.split_indices(len(x), *FRACTIONS, seed=s)[0] for s in SEEDS]
    elsewhere = np.setdiff1d(np.arange(len(x)), np.union1d(*trains))
    assert len(elsewhere) >= 4  # rows outside both seeds' train rows hold the feature's other values
    x[:, 2:] = 0.0
    x[elsewhere, 2:] = rng.uniform(0, 1, size=(len(elsewhere), PIXELS)) * (
        rng.random((len(elsewhere), PIXELS)) < 0.5
    )
    np.savez(path, x=x, y=y)
    return str(path)


def sweep_of(root: Path, source: str, backend: str, population: str) -> SweepDir:
    sweep = SweepDir(root)
    for seed in SEEDS:
        cfg = config(f"r{seed}", seed, source, population=population)
        write_json(sweep.config(cfg["run_id"]), {**cfg, "backend": backend})
    return sweep


def assert_ordinary_validation_losses(sweep: SweepDir) -> None:
    for seed in SEEDS:
        history = pd.read_csv(sweep.history(f"r{seed}"))
        assert len(history) == 2 and np.isfinite(history["val_loss"]).all()
        # An untrained softmax over 2 classes starts near ln 2; a blown-up feature gives ~1e6.
        assert history["val_loss"].max() < 5, history


def test_tensorflow_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    train = importlib.import_module("hpcjobs.train")
    source = source_with_a_feature_constant_in_train(tmp_path / "x.npz")
    sweep = sweep_of(tmp_path / "sweep", source, "tensorflow", "off")
    dataset = train.dataset(source, *FRACTIONS, SEEDS[0], "standard")
    assert (dataset.partition.std[2:] == 1.0).all()
    for seed in SEEDS:
        assert train.train_run(sweep, f"r{seed}")["status"] == "COMPLETED"
    assert_ordinary_validation_losses(sweep)
    # mnist5k through the engine's own path: the scaling that tests/test_splits.py holds to StandardScaler's.
    mnist = train.dataset("mnist5k", *FRACTIONS, 0, "standard").partition
    direct = splits.partition(*data.load("mnist5k"), *FRACTIONS, 0)
    np.testing.assert_array_equal(mnist.std, direct.std)
    np.testing.assert_array_equal(mnist.mean, direct.mean)


def test_jax_fit_and_population(tmp_path):
    source = source_with_a_feature_constant_in_train(tmp_path / "x.npz")
    alone = sweep_of(tmp_path / "alone", source, "jax", "off")
    together = sweep_of(tmp_path / "together", source, "jax", "auto")
    proc = run_python(
        f"""
        import json
        from dataclasses import replace
        from pathlib import Path
        import numpy as np
        from hpcjobs import data, layout, population, splits, worker
        alone = layout.SweepDir(Path({str(alone.root)!r}))
        together = layout.SweepDir(Path({str(together.root)!r}))
        ids = ["r0", "r1"]
        x = np.load({source!r})["x"].astype(np.float32)
        configs = [layout.read_config(together, r) for r in ids]
        members = population.Members.split(configs, x, np.zeros(len(x)))
        mnist = [replace(c, settings=replace(c.settings, data=replace(c.settings.data, source="mnist5k")))
                 for c in configs]
        mx, my = data.load("mnist5k")
        mnist_std = population.Members.split(mnist, mx, my).std
        direct = [splits.partition(mx, my, 0.2, 0.1, c.seed).std for c in mnist]
        print(json.dumps({{
            "mnist_as_direct": bool((mnist_std == np.stack(direct)).all()),
            "population_std": members.std[:, 2:].tolist(),
            "alone": worker.run_lane(alone, ids),
            "together": worker.run_lane(together, ids),
        }}))
        """
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["mnist_as_direct"]
    assert out["population_std"] == [[1.0] * PIXELS] * len(SEEDS)
    assert out["alone"] == out["together"] == {"r0": "COMPLETED", "r1": "COMPLETED"}
    assert all(json.loads(together.result(r).read_text()).get("population") == 2 for r in ("r0", "r1"))
    assert_ordinary_validation_losses(alone)
    assert_ordinary_validation_losses(together)
