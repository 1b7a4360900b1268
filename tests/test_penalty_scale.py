"""model.l2 and data.scale: in the sweep file, in the split, in the trained model, and kept out of the
population program that does neither."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from hpcjobs import plan, splits
from hpcjobs.layout import SweepDir, read_json
from hpcjobs.settings import RunConfig
from hpcjobs.spec import SpecError, expand, parse_spec

BASE = {"name": "p", "data": {"source": "digits"}}


def test_defaults_are_todays_behaviour():
    spec = parse_spec(BASE)
    assert spec.settings.model.l2 == 0.0 and spec.settings.data.scale == "standard"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"model": {"l2": -1e-4}}, "model.l2 = -0.0001 is invalid: expected a number ≥ 0"),
        (
            {"data": {"source": "digits", "scale": "minmax"}},
            'data.scale = "minmax" is invalid: expected one of standard, none',
        ),
    ],
)
def test_bad_values_are_one_line(doc, message):
    with pytest.raises(SpecError, match="^sweep file: " + message.replace("(", r"\(")):
        parse_spec({**BASE, **doc})


def test_both_can_be_swept_and_drawn():
    spec = parse_spec(
        {
            **BASE,
            "search": {"method": "random", "configurations": 4},
            "space": {"model.l2": {"log_uniform": [1e-5, 1e-2]}},
            "sweep": {"data.scale": ["standard", "none"]},
        }
    )
    runs = expand(spec)
    assert len(runs) == 8 and {r.settings.data.scale for r in runs} == {"standard", "none"}
    assert all(1e-5 <= r.settings.model.l2 <= 1e-2 for r in runs)


def test_standard_scale_uses_the_training_split_only_and_none_keeps_the_features():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(200, 3)).astype(np.float32)
    y = np.arange(200) % 2
    scaled = splits.split(x, y, 0.2, 0.1, seed=1)
    assert np.allclose(scaled.x_train.mean(axis=0), 0, atol=1e-5)
    assert not np.allclose(scaled.x_test.mean(axis=0), 0, atol=1e-3)  # held out: not its own statistics
    raw = splits.split(x, y, 0.2, 0.1, seed=1, scale="none")
    train, _, test = splits.split_indices(200, 0.2, 0.1, 1)
    assert np.array_equal(raw.x_train, x[train]) and np.array_equal(raw.x_test, x[test])


@pytest.mark.parametrize(
    "change",
    [{"keep_backup": True}, {"model": {"l2": 1e-4}}, {"data": {"scale": "none"}}],
)
def test_runs_the_population_program_cannot_train_train_alone(change):
    config = {
        "run_id": "r",
        "sweep": "s",
        "seed": 0,
        "backend": "jax",
        "data": {"source": "digits", "scale": "standard"},
        "model": {"hidden": [8], "l2": 0.0},
        "train": {"learning_rate": 1e-3},
    }
    assert plan.population_key(RunConfig.from_dict(config)) is not None
    changed = {k: {**config[k], **v} if isinstance(v, dict) else v for k, v in change.items()}
    assert plan.population_key(RunConfig.from_dict({**config, **changed})) is None


@pytest.mark.keras
def test_a_penalized_unscaled_run_trains_with_the_penalty_in_its_loss(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    train = importlib.import_module("hpcjobs.train")
    models = importlib.import_module("hpcjobs.models")
    from tests.test_train import make_run

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    source = tmp_path / "toy.npz"
    np.savez(source, x=x, y=(x[:, 0] + x[:, 1] > 0).astype(int))
    model = models.build_model(2, 2, hidden=[8, 4], activation="relu", dropout=0.0, l2=0.5)
    assert len(model.losses) == 2  # one penalty per hidden kernel
    assert not models.build_model(2, 2, hidden=[8, 4], activation="relu", dropout=0.0).losses

    sweep, run_id = make_run(tmp_path / "r", str(source))
    config = read_json(sweep.config(run_id))
    for l2, name in ((0.0, "plain"), (0.05, "penalized")):
        changed = {**config, "run_id": name, "model": {**config["model"], "l2": l2}}
        changed["data"] = {**config["data"], "scale": "none"}
        from hpcjobs.layout import write_json

        write_json(sweep.config(name), changed)
        assert train.train_run(SweepDir(tmp_path / "r"), name)["status"] == "COMPLETED"
    plain = read_json(sweep.result("plain"))
    penalized = read_json(sweep.result("penalized"))
    assert penalized["final_loss"] > plain["final_loss"]  # the loss carries the penalty
