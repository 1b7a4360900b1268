"""The pure training plan (plan.py): decided without Keras, so these run in the fast tier."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from hpcjobs import plan
from hpcjobs.settings import DataSettings, ModelSettings, RunConfig, Settings, TrainSettings
from hpcjobs.vocab import Objective

METRICS = ["categorical_accuracy", "mean_squared_error", "mean_absolute_error"]


@pytest.mark.parametrize(
    ("loss", "previous", "n_classes", "expected"),
    [
        (math.nan, math.nan, 10, True),
        (math.inf, 0.5, 2, True),
        (8.06, 6.19, 2, True),  # JAX, lr 1e10, moons: the clipped loss saturates instead of becoming NaN
        (14.49, 14.49, 10, True),  # JAX, lr 1e10, digits: flat at the clip
        (6.19, math.nan, 2, False),  # a first epoch is judged on NaN/inf alone
        (5.13, 7.17, 10, False),  # raw digits pixels at lr 1e-2 on JAX: high, but coming down (then trains)
        (0.52, 0.6, 2, False),  # lr 0.1 trains: the largest loss measured on moons
        (2 * math.log(10), 5.0, 10, False),  # the bound itself is not past it
    ],
)
def test_a_run_diverged_when_its_loss_is_not_finite_or_stays_past_twice_a_uniform_guess(
    loss: float, previous: float, n_classes: int, expected: bool
) -> None:
    assert plan.diverged(loss, previous, n_classes) is expected


@pytest.mark.parametrize(
    ("requested", "capability", "policy"),
    [
        ("auto", None, "float32"),
        ("auto", (9, 0), "mixed_bfloat16"),
        ("auto", (8, 0), "mixed_bfloat16"),
        ("auto", (7, 5), "mixed_float16"),
        ("auto", (7, 0), "mixed_float16"),
        ("auto", (6, 1), "float32"),
        ("float32", (9, 0), "float32"),
        ("mixed_float16", None, "mixed_float16"),
        ("mixed_bfloat16", (7, 0), "mixed_bfloat16"),
    ],
)
def test_choose_policy(requested, capability, policy):
    assert plan.choose_policy(requested, capability) == policy


def test_choose_policy_rejects_unknown():
    with pytest.raises(ValueError, match="Expected precision among auto, float32"):
        plan.choose_policy("float16", None)


def test_summarize_history_keeps_the_last_row_of_a_repeated_epoch():
    history = pd.DataFrame(
        {
            "epoch": [0, 1, 1, 2],
            "loss": [0.9, 0.8, 0.7, 0.6],
            "val_categorical_accuracy": [0.5, 0.9, 0.7, 0.8],  # the 0.9 row was redone after a requeue
            "val_loss": [1.0, 0.5, 0.6, 0.65],
        }
    )
    summary = plan.summarize_history(history, Objective("val_categorical_accuracy", "max"))
    assert summary == {
        "epochs_done": 3,
        "best_epoch": 3,
        "monitor": "val_categorical_accuracy",
        "direction": "max",
        "best": {"val_categorical_accuracy": 0.8, "val_loss": 0.65},
        "final_loss": 0.6,
    }
    assert plan.summarize_history(history, Objective("val_loss", "min"))["best_epoch"] == 2


def test_summarize_history_of_a_run_that_diverged_at_once():
    history = pd.DataFrame({"epoch": [0], "loss": [math.nan], "val_loss": [math.nan]})
    summary = plan.summarize_history(history, Objective("val_loss", "min"))
    assert summary["best_epoch"] is None and summary["best"] == {} and summary["final_loss"] is None


def test_build_result():
    config = RunConfig(
        "r", "s", "tensorflow", 3, Settings(DataSettings("moons"), ModelSettings(), TrainSettings(epochs=10))
    )
    result = plan.build_result(
        config,
        {
            "epochs_done": 4,
            "best_epoch": 2,
            "monitor": "val_loss",
            "best": {"val_loss": 0.5},
            "final_loss": 0.4,
        },
        diverged_epoch=4,
        test={"loss": math.nan, "f1_macro": 0.25},
        params=70,
        timing=plan.Timing.of(10.0, [13.0, 15.0, 17.0], reused=True, until=17.5),
        n_train=100,
        precision_policy="float32",
        execution=plan.Execution(steps_per_execution=7, jit_compile=False, eval_batch_size=4096),
        backend="tensorflow",
        device="cpu",
        versions={"keras": "3"},
        started="a",
        finished="b",
    )
    assert result["status"] == "DIVERGED" and result["diverged_epoch"] == 4
    assert result["test"] == {"loss": None, "f1_macro": 0.25}
    # The first epoch is start-up (tracing, compiling): throughput counts the two after it.
    assert (result["seconds_per_epoch"], result["samples_per_second"]) == (2.0, 50.0)
    assert (result["startup_seconds"], result["training_seconds"], result["reused_model"]) == (3.0, 4.0, True)
    assert result["wall_seconds"] == 7.5
    assert result["epochs"] == 10 and result["seed"] == 3 and result["config"] == config.to_dict()
    assert result["execution"] == {"steps_per_execution": 7, "jit_compile": False, "eval_batch_size": 4096}


def test_one_epoch_is_start_up_only_and_gives_no_throughput():
    assert plan.Timing.of(1.0, [3.5], reused=False, until=4.0) == plan.Timing(2.5, 0.0, 0, False, 3.0)
    # Resumed from a backup of its last epoch: nothing left to train.
    assert plan.Timing.of(1.0, [], reused=True, until=2.0) == plan.Timing(None, None, 0, True, 1.0)
    config = RunConfig(
        "r", "s", "tensorflow", 0, Settings(DataSettings("moons"), ModelSettings(), TrainSettings(epochs=1))
    )
    result = plan.build_result(
        config,
        {"epochs_done": 1, "best_epoch": 1, "monitor": "val_loss", "best": {}, "final_loss": 0.4},
        diverged_epoch=None,
        test={},
        params=1,
        timing=plan.Timing.of(1.0, [3.5], reused=False, until=4.0),
        n_train=100,
        precision_policy="float32",
        execution=plan.Execution(steps_per_execution=1, jit_compile=False, eval_batch_size=4096),
        backend="tensorflow",
        device="cpu",
        versions={},
        started="a",
        finished="b",
    )
    assert (result["samples_per_second"], result["seconds_per_epoch"], result["startup_seconds"]) == (
        None,
        None,
        2.5,
    )


@pytest.mark.parametrize(
    ("requested", "steps_per_epoch", "backend", "chosen"),
    [
        ("auto", 469, "jax", 128),  # MNIST at batch 128: 128, 128, 128 and a last execution of 85
        ("auto", 128, "tensorflow", 128),
        ("auto", 3, "tensorflow", 3),  # one execution per epoch
        ("auto", 1, "jax", 1),
        (16, 469, "jax", 16),  # an explicit choice as is, even above the steps of an epoch
        (1000, 3, "tensorflow", 1000),
        ("auto", 469, "torch", 1),  # Keras runs torch one step at a time
        (1, 469, "torch", 1),
    ],
)
def test_choose_steps_per_execution(requested, steps_per_epoch, backend, chosen):
    assert plan.choose_steps_per_execution(requested, steps_per_epoch, backend) == chosen


@pytest.mark.parametrize(
    ("requested", "backend", "message"),
    [
        (0, "jax", 'Expected steps_per_execution to be "auto" or an integer ≥ 1. Received: 0'),
        (True, "jax", "Received: True"),
        ("fast", "tensorflow", "Received: 'fast'"),
        (8, "torch", "Expected steps_per_execution 1 with the torch backend. Received: 8"),
    ],
)
def test_choose_steps_per_execution_rejects(requested, backend, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        plan.choose_steps_per_execution(requested, 469, backend)


def test_plan_execution():
    cfg = TrainSettings(batch_size=128)
    assert plan.plan_execution(cfg, "jax", 60_000) == plan.Execution(128, True, 4096)
    assert plan.plan_execution(cfg, "tensorflow", 1_000) == plan.Execution(8, False, 4096)
    assert plan.plan_execution(TrainSettings(batch_size=8192, steps_per_execution=4), "jax", 10**6) == (
        plan.Execution(4, True, 8192)  # validation batches never smaller than training batches
    )
    assert plan.plan_execution(cfg, "torch", 60_000) == plan.Execution(1, False, 4096)
