"""Collection: history parsing, one row per run, one row per configuration (mean ± sample std over seeds)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcjobs import collect, layout, manifest
from hpcjobs.manifest import Submission
from hpcjobs.spec import expand, load_spec

from .conftest import EXAMPLES

COLUMNS = ["epoch", "loss", "val_categorical_accuracy", "val_loss"]

# --- parse_history ----------------------------------------------------------------------------------


def test_parse_history_keeps_the_last_row_of_a_repeated_epoch_in_epoch_order() -> None:
    text = "epoch,loss,val_loss\n0,1.0,1.1\n1,0.8,0.9\n1,0.7,0.75\n2,0.6,\n"
    columns, rows = collect.parse_history(text)
    assert columns == ["epoch", "loss", "val_loss"]
    assert rows[:2] == [[0.0, 1.0, 1.1], [1.0, 0.7, 0.75]]
    assert rows[2][:2] == [2.0, 0.6]
    assert math.isnan(rows[2][2])  # an empty cell is NaN


def test_parse_history_of_nothing() -> None:
    assert collect.parse_history("") == ([], [])
    assert collect.parse_history("epoch,loss\n") == (["epoch", "loss"], [])


def test_parse_history_ragged_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="line 3 has 2 fields, the header 3"):
        collect.parse_history("epoch,loss,val_loss\n0,1.0,1.1\n1,0.8\n")


def test_parse_history_without_epoch_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="no 'epoch' column"):
        collect.parse_history("loss,val_loss\n1.0,1.1\n")


# --- run_row ----------------------------------------------------------------------------------------


def _meta(config_id: str, seed: int, hidden: list[int]) -> dict[str, Any]:
    return {
        "run_id": f"{config_id}__seed-{seed}",
        "config_id": config_id,
        "seed": seed,
        "settings": {"model": {"hidden": hidden, "activation": "relu"}, "train": {"learning_rate": 0.001}},
    }


def _history(best: float) -> list[list[float]]:
    """Three epochs whose validation accuracy peaks at `best` in the second."""
    return [[0, 0.9, best - 0.2, 0.8], [1, 0.5, best, 0.4], [2, 0.4, best - 0.1, 0.45]]


def test_run_row_of_a_finished_run() -> None:
    result = {
        "status": "COMPLETED",
        "params": 2410,
        "seconds_per_epoch": 1.5,
        "samples_per_second": 900.0,
        "precision_policy": "float32",
        "device": "cpu",
        "test": {"accuracy": 0.81, "f1_macro": 0.8},
    }
    assert collect.run_row(_meta("h-64x32", 0, [64, 32]), COLUMNS, _history(0.85), result) == {
        "run_id": "h-64x32__seed-0",
        "config_id": "h-64x32",
        "seed": 0,
        "depth": 2,
        "model.hidden": "[64, 32]",
        "model.activation": "relu",
        "train.learning_rate": 0.001,
        "status": "COMPLETED",
        "epochs_done": 3,
        "monitor": "val_categorical_accuracy",
        "best_epoch": 2,
        "best_val_categorical_accuracy": 0.85,
        "best_val_loss": 0.4,
        "final_loss": 0.4,
        "params": 2410,
        "seconds_per_epoch": 1.5,
        "samples_per_second": 900.0,
        "precision_policy": "float32",
        "device": "cpu",
        "test_accuracy": 0.81,
        "test_f1_macro": 0.8,
    }


def test_run_row_monitors_val_loss_by_its_minimum() -> None:
    row = collect.run_row(
        _meta("c", 0, [8]),
        ["epoch", "loss", "val_loss"],
        [[0, 1.0, 0.9], [1, 0.8, 0.7], [2, 0.6, 0.75]],
        None,
    )
    assert (row["monitor"], row["best_epoch"], row["best_val_loss"]) == ("val_loss", 2, 0.7)


def test_run_row_without_history_or_result() -> None:
    assert collect.run_row(_meta("c", 1, [8]), [], [], None) == {
        "run_id": "c__seed-1",
        "config_id": "c",
        "seed": 1,
        "depth": 1,
        "model.hidden": "[8]",
        "model.activation": "relu",
        "train.learning_rate": 0.001,
        "status": "UNFINISHED",
        "epochs_done": 0,
    }


# --- summarize --------------------------------------------------------------------------------------


def _runs() -> pd.DataFrame:
    """Config A: 3 finished seeds (best 0.80, 0.84, 0.88); B: 2 finished (0.90, 0.92) and one unfinished."""
    rows = [
        collect.run_row(_meta("A", seed, [64, 32]), COLUMNS, _history(best), {"status": "COMPLETED"})
        for seed, best in enumerate([0.80, 0.84, 0.88])
    ]
    rows += [
        collect.run_row(_meta("B", seed, [128]), COLUMNS, _history(best), {"status": "COMPLETED"})
        for seed, best in enumerate([0.90, 0.92])
    ]
    rows.append(collect.run_row(_meta("B", 2, [128]), COLUMNS, _history(0.30), None))
    return pd.DataFrame(rows)


def test_summarize_one_row_per_config_with_mean_and_sample_std() -> None:
    summary = collect.summarize(_runs())
    assert summary["config_id"].tolist() == ["A", "B"]
    assert summary["model.hidden"].tolist() == ["[64, 32]", "[128]"]
    assert summary["depth"].tolist() == [2, 1]
    assert "model.activation" not in summary  # the same in every run: not a setting that varies
    a, b = summary.to_dict("records")
    assert a["best_val_categorical_accuracy_mean"] == pytest.approx(0.84, abs=1e-12)
    assert a["best_val_categorical_accuracy_std"] == pytest.approx(0.04, abs=1e-12)
    assert b["best_val_categorical_accuracy_mean"] == pytest.approx(0.91, abs=1e-12)
    assert b["best_val_categorical_accuracy_std"] == pytest.approx(math.sqrt(2) / 100, abs=1e-12)
    assert a["best_epoch_mean"] == 2.0


def test_summarize_counts_unfinished_runs_but_leaves_them_out_of_the_means() -> None:
    a, b = collect.summarize(_runs()).to_dict("records")
    assert (a["finished"], a["outcomes"]) == ("3/3", "3 COMPLETED")
    assert (b["finished"], b["outcomes"]) == ("2/3", "2 COMPLETED, 1 UNFINISHED")


def test_summarize_counts_a_diverged_run_in_outcomes() -> None:
    rows = [
        collect.run_row(_meta("A", seed, [8]), COLUMNS, _history(0.7), {"status": status})
        for seed, status in enumerate(["COMPLETED", "DIVERGED", "COMPLETED"])
    ]
    (row,) = collect.summarize(pd.DataFrame(rows)).to_dict("records")
    assert (row["finished"], row["outcomes"]) == ("3/3", "2 COMPLETED, 1 DIVERGED")


def test_summarize_of_no_runs_is_empty() -> None:
    assert collect.summarize(pd.DataFrame()).empty


@settings(max_examples=50, deadline=None)
@given(bests=st.lists(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=5), min_size=1, max_size=4))
def test_summary_mean_and_std_match_numpy(bests: list[list[float]]) -> None:
    runs = pd.DataFrame(
        [
            {
                "run_id": f"c{c}__seed-{s}",
                "config_id": f"c{c}",
                "seed": s,
                "depth": 1,
                "model.hidden": f"[{c}]",
                "status": "COMPLETED",
                "best_val_loss": value,
            }
            for c, values in enumerate(bests)
            for s, value in enumerate(values)
        ]
    )
    summary = collect.summarize(runs)
    assert summary["config_id"].tolist() == [f"c{c}" for c in range(len(bests))]
    for (_, row), values in zip(summary.iterrows(), bests, strict=True):
        assert row["best_val_loss_mean"] == pytest.approx(np.mean(values), rel=1e-9, abs=1e-12)
        assert row["best_val_loss_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9, abs=1e-12)
        assert row["finished"] == f"{len(values)}/{len(values)}"


# --- collect over a sweep folder --------------------------------------------------------------------

HISTORY = "epoch,loss,val_categorical_accuracy,val_loss\n0,0.9,0.6,0.8\n1,0.5,{best},0.4\n"


def test_collect_reports_a_corrupt_history_and_summarises_the_rest(tmp_path: Path) -> None:
    runs = expand(load_spec(EXAMPLES / "moons.toml"))  # 3 configs × seeds 0, 1
    ids = [r.run_id for r in runs]
    sweep = layout.SweepDir(tmp_path / "moons")
    layout.make_private_dir(sweep.root)
    man = manifest.Manifest.new("moons", "tensorflow", runs, {})
    man.submissions.append(Submission("fake", "1000", [[i] for i in ids]))
    manifest.write(sweep, man)
    for run_id, best in zip(ids, [0.8, 0.9, 0.7, 0.75, 0.6, 0.65], strict=True):
        layout.write_text(sweep.history(run_id), HISTORY.format(best=best))
        layout.write_json(sweep.result(run_id), {"status": "COMPLETED", "test": {"accuracy": best}})
    layout.write_text(sweep.history(ids[3]), "epoch,loss,val_categorical_accuracy,val_loss\n0,0.9\n")
    layout.write_text(sweep.result(ids[5]), '{"status": "COMPL')  # cut off mid-write

    got = collect.collect(sweep)

    assert len(got.problems) == 2
    assert got.problems[0] == f"{ids[3]}: history.csv unreadable (line 2 has 2 fields, the header 4)"
    assert got.problems[1].startswith(f"{ids[5]}: result.json unreadable (")
    assert got.runs["run_id"].tolist() == ids
    assert got.runs["epochs_done"].tolist() == [2, 2, 2, 0, 2, 2]
    assert got.runs["status"].tolist() == ["COMPLETED"] * 5 + ["UNFINISHED"]
    assert len(got.epochs) == 10
    summary = got.summary.set_index("config_id")
    assert summary["finished"].tolist() == ["2/2", "2/2", "1/2"]
    assert summary["best_val_categorical_accuracy_mean"].tolist() == pytest.approx([0.85, 0.7, 0.6])
    assert summary["test_accuracy_mean"].tolist() == pytest.approx([0.85, 0.725, 0.6])


def test_collect_survives_a_history_without_validation_columns(tmp_path: Path) -> None:
    runs = expand(load_spec(EXAMPLES / "moons.toml"))[:2]
    sweep = layout.SweepDir(tmp_path / "moons")
    manifest.write(sweep, manifest.Manifest.new("moons", "tensorflow", runs, {}))
    layout.write_text(sweep.history(runs[0].run_id), HISTORY.format(best=0.8))
    layout.write_text(
        sweep.history(runs[1].run_id), "epoch,loss,categorical_accuracy\n0,0.9,0.6\n1,0.5,0.7\n"
    )

    got = collect.collect(sweep)

    assert got.runs["epochs_done"].tolist() == [2, 2]
