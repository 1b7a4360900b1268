"""The vocabulary: the state sets, the objective's choice of a best epoch, and the lanes of a task.

Also what a PREEMPTED run means to every command that reads the sets: watch, wait, resubmit and cancel.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcjobs import layout, manifest, status
from hpcjobs import sweep as sweeps
from hpcjobs.backends import FakeBackend
from hpcjobs.slurm import JobRow
from hpcjobs.spec import expand, load_spec
from hpcjobs.vocab import (
    ACTIVE,
    FINISHED,
    ORDER,
    QUIET,
    RETRYABLE,
    DataError,
    InputError,
    Objective,
    RunState,
    Submission,
    lanes,
)

from .conftest import EXAMPLES, PACKED

# --- states -----------------------------------------------------------------------------------------


def test_every_listed_state_is_exactly_one_of_finished_retryable_active_or_not_submitted() -> None:
    for state in ORDER:
        kinds = [state in FINISHED, state in RETRYABLE, state in ACTIVE, state == RunState.NOT_SUBMITTED]
        assert sum(kinds) == 1, state


def test_the_sets_hold_only_known_words() -> None:
    words = {v for k, v in vars(RunState).items() if k.isupper()}
    assert words >= FINISHED | RETRYABLE | QUIET
    assert set(ORDER) <= words


def test_preempted_has_ended_and_can_be_retried() -> None:
    assert RunState.PREEMPTED in RETRYABLE and RunState.PREEMPTED not in ACTIVE


def _preempted_sweep(root: Path) -> tuple[layout.SweepDir, FakeBackend, list[str]]:
    """Three runs, one task each: one COMPLETED, one whose task sacct calls PREEMPTED, one RUNNING."""
    runs = expand(load_spec(EXAMPLES / "moons.toml"))[:3]
    ids = [r.run_id for r in runs]
    sweep = layout.SweepDir(root / "moons")
    layout.make_private_dir(sweep.root)
    man = manifest.Manifest.new("moons", "tensorflow", runs, PACKED)
    man.submissions.append(Submission("fake", "1000", [[ids[0]], [ids[1]]]))
    man.submissions.append(Submission("fake", "1001", [[ids[2]]]))
    manifest.write(sweep, man)
    layout.write_json(sweep.result(ids[0]), {"status": "COMPLETED"})
    layout.write_text(sweep.history(ids[2]), "epoch,loss,val_loss\n0,0.9,0.8\n")  # training
    fake = FakeBackend(
        scripted={
            ("1000", 0): JobRow("COMPLETED"),
            ("1000", 1): JobRow("PREEMPTED", "0:15"),
            ("1001", 0): JobRow("RUNNING"),
        }
    )
    return sweep, fake, ids


def test_a_preempted_run_ends_the_wait_is_resubmitted_and_is_not_cancelled(tmp_path: Path) -> None:
    sweep, fake, ids = _preempted_sweep(tmp_path)
    got = status.gather(sweep, lambda name: fake)
    assert [r.state for r in got.runs] == ["COMPLETED", "PREEMPTED", "RUNNING"]
    assert not got.done  # the RUNNING one still has work

    # cancel: only the job that still has work; the preempted task has none left.
    assert sweeps.cancel(sweep, lambda name: fake) == ["1001"]

    # once the running one ends, watch and wait stop: nothing will run the preempted one by itself.
    fake.scripted[("1001", 0)] = JobRow("COMPLETED")
    layout.write_json(sweep.result(ids[2]), {"status": "COMPLETED"})
    assert status.gather(sweep, lambda name: fake).done

    # resubmit --failed takes it (and only it).
    outcome = sweeps.resubmit(sweep, "failed", lambda name: fake)
    assert outcome.to_submit == [ids[1]]


# --- objective --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "objective"),
    [
        (["categorical_accuracy", "mean_squared_error"], Objective("val_categorical_accuracy", "max")),
        (["accuracy", "mean_squared_error"], Objective("val_accuracy", "max")),
        (["mean_absolute_error"], Objective("val_loss", "min")),
    ],
)
def test_objective_for_metrics(metrics: list[str], objective: Objective) -> None:
    assert Objective.for_metrics(metrics) == objective


@pytest.mark.parametrize(
    ("columns", "name"),
    [
        (["val_loss", "val_categorical_accuracy", "val_accuracy"], "val_categorical_accuracy"),
        (["val_loss", "val_accuracy"], "val_accuracy"),
        (["loss", "val_loss"], "val_loss"),
        (["loss", "categorical_accuracy"], None),  # no validation value logged
        ([], None),
    ],
)
def test_objective_logged_in_history_columns(columns: list[str], name: str | None) -> None:
    found = Objective.logged_in(columns)
    assert (found.name if found else None) == name


def test_better_than_follows_the_direction_and_never_prefers_nan() -> None:
    up, down = Objective("val_accuracy", "max"), Objective("val_loss", "min")
    assert up.better_than(0.9, 0.8) and not up.better_than(0.8, 0.9) and not up.better_than(0.8, 0.8)
    assert down.better_than(0.1, 0.2) and not down.better_than(0.2, 0.1)
    assert up.better_than(0.0, math.nan) and not up.better_than(math.nan, 0.0)
    assert not down.better_than(math.nan, math.nan)


def test_best_epoch_of_an_all_nan_objective_is_none() -> None:
    assert Objective("val_loss", "min").best_epoch([math.nan, math.nan]) is None
    assert Objective("val_loss", "min").best_epoch([]) is None


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(math.nan)), min_size=1, max_size=8))
def test_best_epoch_is_the_first_best_finite_value(values: list[float]) -> None:
    array = np.array(values)
    for objective, reference in (
        (Objective("a", "max"), np.nanargmax),
        (Objective("l", "min"), np.nanargmin),
    ):
        expected = None if np.isnan(array).all() else int(reference(array))
        assert objective.best_epoch(values) == expected


# --- lanes ------------------------------------------------------------------------------------------


def test_lanes_share_a_task_in_contiguous_parts_as_even_as_can_be() -> None:
    assert lanes(["a", "b", "c", "d", "e"], 2) == [["a", "b", "c"], ["d", "e"]]
    assert lanes(["a"], 4) == [["a"]]
    assert lanes(["a", "b"], 1) == [["a", "b"]]
    assert lanes([], 3) == []


@given(st.lists(st.integers(), max_size=40), st.integers(min_value=1, max_value=12))
def test_lanes_keep_order_and_every_run_once_and_differ_by_one_at_most(
    runs: list[int], parallel: int
) -> None:
    parts = lanes(runs, parallel)
    assert [r for part in parts for r in part] == runs
    assert len(parts) == min(parallel, len(runs))
    assert all(parts) and (not parts or max(map(len, parts)) - min(map(len, parts)) <= 1)


def test_runs_of_one_program_stay_in_one_process_where_they_fit() -> None:
    # 4 architectures × 6 runs (digits_depth.toml) in program order on 4 processes: one program each.
    runs = [f"{arch}{i}" for arch in "ABCD" for i in range(6)]
    assert [{r[0] for r in part} for part in lanes(runs, 4)] == [{"A"}, {"B"}, {"C"}, {"D"}]


# --- input errors -----------------------------------------------------------------------------------


def test_every_input_error_says_so_by_its_base() -> None:
    """One base for exit 2: the CLI needs to know no module's error classes (QueryError is no SpecError)."""
    from hpcjobs.clikit import OptionError
    from hpcjobs.collect import QueryError
    from hpcjobs.jobs import SweepError
    from hpcjobs.layout import LayoutError
    from hpcjobs.spec import SpecError

    for error in (SpecError, SweepError, LayoutError, DataError, QueryError, OptionError):
        assert issubclass(error, InputError), error
    assert not issubclass(QueryError, SpecError)
