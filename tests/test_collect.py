"""Collection: one row per run, one row per configuration (mean ± sample std over seeds), choosing what to
show (--where, --sort, --top), the output formats, and `hpcjobs collect` on hand-built sweep folders."""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.table import Table

from hpcjobs import collect, layout, manifest, plan, render
from hpcjobs.cli import cli
from hpcjobs.collect import Collection, Query, QueryError
from hpcjobs.spec import expand, load_spec
from hpcjobs.vocab import Objective, Submission

from .conftest import EXAMPLES, PACKED

NAN = float("nan")
needs_pyarrow = pytest.mark.skipif(
    importlib.util.find_spec("pyarrow") is None,
    reason="pyarrow is not installed: pip install 'hpcjobs[parquet]'",
)

# --- run_row ----------------------------------------------------------------------------------------


def _meta(config_id: str, seed: int, hidden: list[int]) -> dict[str, Any]:
    return {
        "run_id": f"{config_id}__seed-{seed}",
        "config_id": config_id,
        "seed": seed,
        "settings": {"model": {"hidden": hidden, "activation": "relu"}, "train": {"learning_rate": 0.001}},
    }


def _stats(best: float) -> dict[str, Any]:
    """What history_stats reports for a three-epoch run whose validation accuracy peaks at `best`."""
    return {
        "epochs_done": 3,
        "monitor": "val_categorical_accuracy",
        "best_epoch": 2,
        "best_val_categorical_accuracy": best,
        "best_val_loss": 0.4,
        "final_loss": 0.4,
    }


def test_run_row_of_a_finished_run() -> None:
    result = {
        "status": "COMPLETED",
        "params": 2410,
        "seconds_per_epoch": 1.5,
        "samples_per_second": 900.0,
        "startup_seconds": 6.5,
        "precision_policy": "float32",
        "device": "cpu",
        "test": {"accuracy": 0.81, "f1_macro": 0.8},
    }
    assert collect.run_row(_meta("h-64x32", 0, [64, 32]), _stats(0.85), result) == {
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
        "startup_seconds": 6.5,
        "precision_policy": "float32",
        "device": "cpu",
        "test_accuracy": 0.81,
        "test_f1_macro": 0.8,
    }


def test_run_row_without_history_or_result() -> None:
    assert collect.run_row(_meta("c", 1, [8]), None, None) == {
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
    done = {"status": "COMPLETED", "params": 100, "seconds_per_epoch": 2.0}
    rows = [
        collect.run_row(_meta("A", s, [64, 32]), _stats(b), done) for s, b in enumerate([0.80, 0.84, 0.88])
    ]
    rows += [collect.run_row(_meta("B", s, [128]), _stats(b), done) for s, b in enumerate([0.90, 0.92])]
    rows.append(collect.run_row(_meta("B", 2, [128]), _stats(0.30), None))
    return pd.DataFrame(rows)


def test_summarize_one_row_per_config_with_mean_and_sample_std() -> None:
    summary = collect.summarize(_runs())
    assert summary.columns.tolist() == [
        "config_id",
        "model.hidden",
        "depth",
        "params",
        "runs_finished",
        "runs_total",
        "outcomes",
        *(
            f"{m}_{s}"
            for m in ("best_epoch", "best_val_categorical_accuracy", "best_val_loss")
            for s in ("mean", "std")
        ),
        *(
            f"{m}_{s}"
            for m in ("final_loss", "seconds_per_epoch", "samples_per_second", "startup_seconds")
            for s in ("mean", "std")
        ),
    ]
    assert summary["config_id"].tolist() == ["A", "B"]
    assert summary["model.hidden"].tolist() == ["[64, 32]", "[128]"]  # activation is the same everywhere
    assert summary["depth"].tolist() == [2, 1]
    a, b = summary.to_dict("records")
    assert a["best_val_categorical_accuracy_mean"] == pytest.approx(0.84, abs=1e-12)
    assert a["best_val_categorical_accuracy_std"] == pytest.approx(0.04, abs=1e-12)
    assert b["best_val_categorical_accuracy_mean"] == pytest.approx(0.91, abs=1e-12)
    assert b["best_val_categorical_accuracy_std"] == pytest.approx(math.sqrt(2) / 100, abs=1e-12)
    assert (a["best_epoch_mean"], a["seconds_per_epoch_mean"], a["seconds_per_epoch_std"]) == (2.0, 2.0, 0.0)


def test_summarize_counts_unfinished_runs_but_leaves_them_out_of_the_means() -> None:
    a, b = collect.summarize(_runs()).to_dict("records")
    assert (a["runs_finished"], a["runs_total"], a["outcomes"]) == (3, 3, "3 COMPLETED")
    assert (b["runs_finished"], b["runs_total"], b["outcomes"]) == (2, 3, "2 COMPLETED, 1 UNFINISHED")


def test_summarize_lists_outcomes_in_status_order_and_gives_one_seed_no_std() -> None:
    rows = [
        collect.run_row(_meta("A", seed, [8]), _stats(0.7), {"status": status} if status else None)
        for seed, status in enumerate([None, "FAILED", "DIVERGED", "COMPLETED", "DIVERGED"])
    ]
    (row,) = collect.summarize(pd.DataFrame(rows)).to_dict("records")
    assert (row["runs_finished"], row["runs_total"]) == (3, 5)
    assert row["outcomes"] == "1 COMPLETED, 2 DIVERGED, 1 FAILED, 1 UNFINISHED"
    one = collect.summarize(pd.DataFrame(rows[3:4])).iloc[0]
    assert one["best_val_categorical_accuracy_mean"] == 0.7 and math.isnan(
        one["best_val_categorical_accuracy_std"]
    )


def test_summarize_of_runs_none_of_which_finished_keeps_the_configs_with_nan_measures() -> None:
    rows = [
        collect.run_row(_meta("A", 0, [8]), _stats(0.7), None),
        collect.run_row(_meta("B", 0, [9]), None, None),
    ]
    summary = collect.summarize(pd.DataFrame(rows))
    assert summary[["runs_finished", "runs_total"]].values.tolist() == [[0, 1], [0, 1]]
    assert summary["best_val_categorical_accuracy_mean"].isna().all()


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
        assert row["runs_finished"] == row["runs_total"] == len(values)


# --- where, sort, top -------------------------------------------------------------------------------

RUNS = pd.DataFrame(
    {
        "config_id": ["a", "a", "b", "c"],
        "depth": [2, 2, 1, 1],
        "model.hidden": ["[64, 32]", "[64, 32]", "[128]", "[128]"],
        "model.activation": ["relu"] * 4,
        "train.learning_rate": [0.001, 0.001, 0.001, 0.003],
    }
)
SUMMARY = pd.DataFrame(
    {
        "config_id": ["a", "b", "c"],
        "model.hidden": ["[64, 32]", "[128]", "[128]"],
        "depth": [2, 1, 1],
        "runs_finished": [2, 1, 1],
        "runs_total": [2, 1, 1],
        "best_val_categorical_accuracy_mean": [0.8, 0.9, NAN],
        "best_val_loss_mean": [0.5, 0.3, 0.4],
        "test_f1_macro_mean": [0.7, 0.85, 0.9],
        "seconds_per_epoch_mean": [3.0, 1.0, 2.0],
    }
)


@pytest.mark.parametrize(
    ("where", "matched"),
    [
        (("model.hidden=[64,32]",), [0, 1]),
        (("model.hidden=[128]", "train.learning_rate=1e-3"), [2]),
        (("train.learning_rate=0.003",), [3]),
        (("model.activation=relu", "depth=1"), [2, 3]),
        (('model.activation="relu"',), [0, 1, 2, 3]),
        (("model.activation=tanh",), []),
        ((), [0, 1, 2, 3]),
    ],
)
def test_where_compares_values_read_as_json_and_all_must_hold(
    where: tuple[str, ...], matched: list[int]
) -> None:
    assert RUNS.index[collect.where_mask(RUNS, where)].tolist() == matched


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "model.hiden=[3]",
            "--where 'model.hiden=[3]': unknown key 'model.hiden' (did you mean 'model.hidden'?); "
            "valid keys: model.activation ('activation'), model.hidden ('hidden'), "
            "train.learning_rate ('lr'), depth",
        ),
        ("model.hidden", "--where 'model.hidden': expected KEY=VALUE such as hidden=[64,32] or lr=0.003"),
    ],
)
def test_where_with_an_unknown_key_or_no_value_names_the_valid_keys(where: str, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        collect.where_mask(RUNS, (where,))
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("key", ["model.hidden", "hidden", "HIDDEN"])
def test_where_takes_the_same_keys_as_sort_and_the_table_headers(key: str) -> None:
    assert collect.sort_column(SUMMARY, key) == "model.hidden"
    assert RUNS.index[collect.where_mask(RUNS, (f"{key}=[128]",))].tolist() == [2, 3]


@pytest.mark.parametrize(
    ("where", "matched"),
    [(("hidden=64x32",), [0, 1]), (("hidden=128",), [2, 3]), (("hidden=128", "lr=0.003"), [3])],
)
def test_where_accepts_values_as_the_table_shows_them(where: tuple[str, ...], matched: list[int]) -> None:
    assert RUNS.index[collect.where_mask(RUNS, where)].tolist() == matched


def test_where_matching_nothing_lists_the_values_there_are() -> None:
    assert collect.no_match(RUNS, ("hidden=64x33", "lr=0.001")) == "hidden is one of 64x32, 128"
    assert collect.no_match(RUNS, ("hidden=64x32", "lr=0.003")) == (
        "each condition matches some runs, but no run all of them"
    )


def test_sort_and_where_name_a_setting_alike() -> None:
    summary = SUMMARY.assign(**{"train.learning_rate": [0.001, 0.001, 0.003]})
    with pytest.raises(QueryError) as sorting:
        collect.sort_column(summary, "nope")
    with pytest.raises(QueryError) as filtering:
        collect.where_mask(RUNS, ("nope=1",))
    assert "train.learning_rate ('lr')" in str(sorting.value)
    assert "train.learning_rate ('lr')" in str(filtering.value)


@pytest.mark.parametrize("key", ["train.learning_rate", "learning_rate", "lr", "learning rate"])
def test_a_setting_answers_to_its_dotted_key_its_name_and_its_short_header(key: str) -> None:
    assert RUNS.index[collect.where_mask(RUNS, (f"{key}=0.003",))].tolist() == [3]


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("test_f1_macro_mean", "test_f1_macro_mean"),
        ("test_f1_macro", "test_f1_macro_mean"),
        ("val_loss", "best_val_loss_mean"),
        ("test F1", "test_f1_macro_mean"),
        ("Best Val Acc", "best_val_categorical_accuracy_mean"),
        ("hidden", "model.hidden"),
        ("runs", "runs_finished"),
        ("runs_total", "runs_total"),
        ("depth", "depth"),
    ],
)
def test_sort_column_from_a_column_a_measure_or_a_header(name: str, column: str) -> None:
    assert collect.sort_column(SUMMARY, name) == column


def test_sort_by_an_unknown_name_lists_what_there_is() -> None:
    with pytest.raises(QueryError) as raised:
        collect.sort_column(SUMMARY, "f2")
    assert str(raised.value) == (
        "--sort 'f2': unknown key 'f2'; valid keys: model.hidden ('hidden'), depth, runs_finished ('runs'), "
        "best_val_categorical_accuracy ('best val acc'), best_val_loss ('best val loss'), "
        "test_f1_macro ('test F1'), seconds_per_epoch ('s/epoch'), config_id, runs_total"
    )


@pytest.mark.parametrize(
    ("column", "ascending"),
    [
        ("best_val_categorical_accuracy_mean", False),
        ("test_f1_macro_mean", False),
        ("samples_per_second_mean", False),
        ("best_val_loss_mean", True),
        ("best_val_mean_squared_error_mean", True),
        ("final_loss_mean", True),
        ("seconds_per_epoch_mean", True),
        ("best_epoch_mean", True),
        ("test_f1_macro_std", True),
        ("params", True),
        ("depth", True),
        ("train.learning_rate", True),
    ],
)
def test_scores_sort_largest_first_costs_sizes_and_settings_smallest_first(
    column: str, ascending: bool
) -> None:
    assert collect.ascending_by_default(column) is ascending


@pytest.mark.parametrize(
    ("query", "order"),
    [
        (Query(), ["a", "b", "c"]),
        (Query(sort="test F1"), ["c", "b", "a"]),
        (Query(sort="val_loss"), ["b", "c", "a"]),
        (Query(sort="val_loss", ascending=False), ["a", "c", "b"]),
        (Query(sort="best val acc"), ["b", "a", "c"]),  # missing last
        (Query(sort="best val acc", ascending=True), ["a", "b", "c"]),
        (Query(sort="s/epoch", top=1), ["b"]),
        (Query(top=2), ["b", "a"]),  # ranked by the monitored metric
    ],
)
def test_rank_sorts_then_keeps_the_top(query: Query, order: list[str]) -> None:
    assert collect.rank(SUMMARY, query)["config_id"].tolist() == order


def test_best_config_is_best_on_the_monitored_metric() -> None:
    assert collect.best_config(SUMMARY) == 1
    assert collect.best_config(SUMMARY.drop(columns="best_val_categorical_accuracy_mean")) == 1  # min loss
    assert collect.best_config(SUMMARY[["config_id", "test_f1_macro_mean"]]) is None


def test_select_keeps_the_runs_and_epochs_of_the_chosen_configurations_in_order() -> None:
    epochs = pd.DataFrame({"config_id": ["a", "a", "b", "c"], "epoch": [0, 1, 0, 0]})
    col = Collection(RUNS, epochs, SUMMARY, ["a problem"])
    got = collect.select(col, Query(where=("depth=1",), sort="test F1"))
    assert got.summary["config_id"].tolist() == ["c", "b"]
    assert got.runs.index.tolist() == [2, 3]
    assert got.epochs["config_id"].tolist() == ["b", "c"]
    assert got.problems == ["a problem"]


# --- formats ----------------------------------------------------------------------------------------

SMALL = pd.DataFrame(
    {
        "config_id": ["a", "b"],
        "model.hidden": ["[8]", "[16, 16]"],
        "depth": [1, 2],
        "params": [50, 400],
        "runs_finished": [2, 1],
        "runs_total": [2, 2],
        "outcomes": ["2 COMPLETED", "1 COMPLETED, 1 UNFINISHED"],
        "best_val_accuracy_mean": [0.9, 0.85],
        "best_val_accuracy_std": [0.01, NAN],
    }
)


def test_csv_keeps_every_number() -> None:
    assert render.summary_bytes(SMALL, "csv").decode() == (
        "config_id,model.hidden,depth,params,runs_finished,runs_total,outcomes,best_val_accuracy_mean,"
        "best_val_accuracy_std\n"
        'a,[8],1,50,2,2,2 COMPLETED,0.9,0.01\nb,"[16, 16]",2,400,1,2,"1 COMPLETED, 1 UNFINISHED",0.85,\n'
    )


def test_markdown_escapes_a_pipe_inside_a_cell() -> None:
    frame = pd.DataFrame({"data.source": ["a|b.csv"], "n|m": [1]})
    assert render.markdown(frame) == "| data.source | n\\|m |\n|---|---|\n| a\\|b.csv | 1 |\n"


def test_markdown_is_the_table_people_read() -> None:
    assert render.summary_bytes(SMALL, "md").decode() == (
        "| hidden | depth | params | runs | best val acc | outcomes |\n"
        "|---|---|---|---|---|---|\n"
        "| [8] | 1 | 50 | 2/2 | 0.900 ± 0.010 | 2 COMPLETED |\n"
        "| [16, 16] | 2 | 400 | 1/2 | 0.850 | 1 COMPLETED, 1 UNFINISHED |\n"
    )


def test_json_is_records_of_numbers_and_lists_with_null_for_missing() -> None:
    assert json.loads(render.summary_bytes(SMALL, "json")) == [
        {
            "config_id": "a",
            "model.hidden": [8],
            "depth": 1,
            "params": 50,
            "runs_finished": 2,
            "runs_total": 2,
            "outcomes": "2 COMPLETED",
            "best_val_accuracy_mean": 0.9,
            "best_val_accuracy_std": 0.01,
        },
        {
            "config_id": "b",
            "model.hidden": [16, 16],
            "depth": 2,
            "params": 400,
            "runs_finished": 1,
            "runs_total": 2,
            "outcomes": "1 COMPLETED, 1 UNFINISHED",
            "best_val_accuracy_mean": 0.85,
            "best_val_accuracy_std": None,
        },
    ]


def test_json_of_no_rows_is_an_empty_list() -> None:
    assert render.summary_bytes(SMALL.iloc[:0], "json") == b"[]\n"


@needs_pyarrow
def test_parquet_round_trips() -> None:
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(render.summary_bytes(SMALL, "parquet"))), SMALL)


def test_terminal_table_has_mean_std_on_one_line_and_leaves_out_what_the_row_already_says() -> None:
    cols = render.summary_columns(SMALL, "best_val_accuracy_mean")
    assert [(c.header, c.right, c.keep) for c in cols] == [
        ("hidden", False, True),
        ("params", True, False),
        ("runs", True, True),
        ("best val acc", True, True),
        ("outcomes", False, False),  # kept: not every run completed
    ]
    assert cols[0].cells == ["8", "16x16"]
    assert cols[3].cells == ["0.900±0.010", "0.850"]
    wide = render.summary_columns(SMALL, None, wide=True)
    assert [c.header for c in wide][:3] == ["hidden", "depth", "params"]


def test_terminal_table_highlights_the_best_row_and_names_what_it_left_out() -> None:
    table = render.summary_table(SMALL, "title", best_index=0, main="best_val_accuracy_mean", width=30)
    text = render.to_text(table, width=30)
    assert text.splitlines()[0] == "title"
    assert text.splitlines()[-1] == "--wide adds: outcomes, params"
    rows = next(r for r in table.renderables if isinstance(r, Table)).rows
    assert [r.style for r in rows] == ["bold green", None]
    assert max(len(line) for line in text.splitlines()) <= 30


# --- collect over a sweep folder --------------------------------------------------------------------

HISTORY = "epoch,loss,val_categorical_accuracy,val_loss\n0,0.9,0.6,0.8\n1,0.5,{best},0.4\n"


def test_collect_reports_a_corrupt_history_and_summarises_the_rest(tmp_path: Path) -> None:
    runs = expand(load_spec(EXAMPLES / "moons.toml"))  # 3 configs × seeds 0, 1
    ids = [r.run_id for r in runs]
    sweep = layout.SweepDir(tmp_path / "moons")
    layout.make_private_dir(sweep.root)
    man = manifest.Manifest.new("moons", "tensorflow", runs, PACKED)
    man.submissions.append(Submission("fake", "1000", [[i] for i in ids]))
    manifest.write(sweep, man)
    for run_id, best in zip(ids, [0.8, 0.9, 0.7, 0.75, 0.6, 0.65], strict=True):
        layout.write_text(sweep.history(run_id), HISTORY.format(best=best))
        layout.write_json(sweep.result(run_id), {"status": "COMPLETED", "test": {"accuracy": best}})
    layout.write_text(sweep.history(ids[3]), "epoch,loss,val_categorical_accuracy,val_loss\n0,0.9\n")
    layout.write_text(sweep.result(ids[5]), '{"status": "COMPL')  # cut off mid-write
    layout.write_text(sweep.result(ids[4]), "[1, 2]")

    got = collect.collect(sweep)

    assert got.problems == [
        f"{ids[3]}: history.csv unreadable (line 2 has 2 fields, the header 4)",
        f"{ids[4]}: result.json unreadable (expected a JSON object, found list)",
        f"{ids[5]}: result.json unreadable (Unterminated string starting at: line 1 column 12 (char 11))",
    ]
    assert got.runs["run_id"].tolist() == ids
    assert got.runs["epochs_done"].tolist() == [2, 2, 2, 0, 2, 2]
    # A COMPLETED run whose history cannot be used is counted apart: its config is 1/2, not 2/2.
    no_epochs = "COMPLETED without usable epochs"
    assert got.runs["status"].tolist() == ["COMPLETED"] * 3 + [no_epochs] + ["UNFINISHED"] * 2
    assert len(got.epochs) == 10
    summary = got.summary.set_index("config_id")
    assert summary["runs_finished"].tolist() == [2, 1, 0]
    assert summary["outcomes"].tolist()[1] == f"1 COMPLETED, 1 {no_epochs}"
    assert summary["best_val_categorical_accuracy_mean"].tolist()[:2] == pytest.approx([0.85, 0.7])
    assert summary["test_accuracy_mean"].tolist()[:2] == pytest.approx([0.85, 0.7])


def test_collect_survives_a_history_without_validation_columns(tmp_path: Path) -> None:
    runs = expand(load_spec(EXAMPLES / "moons.toml"))[:2]
    sweep = layout.SweepDir(tmp_path / "moons")
    manifest.write(sweep, manifest.Manifest.new("moons", "tensorflow", runs, PACKED))
    layout.write_text(sweep.history(runs[0].run_id), HISTORY.format(best=0.8))
    layout.write_text(
        sweep.history(runs[1].run_id), "epoch,loss,categorical_accuracy\n0,0.9,0.6\n1,0.5,0.7\n"
    )

    got = collect.collect(sweep)

    assert got.runs["epochs_done"].tolist() == [2, 2]
    assert got.epochs.columns.tolist()[:5] == ["run_id", "config_id", "seed", "model.hidden", "epoch"]


def test_a_sweep_not_varying_the_architecture_still_shows_it(tmp_path: Path) -> None:
    spec = load_spec(EXAMPLES / "moons.toml")
    runs = [r for r in expand(spec) if r.settings.model.hidden == (64,)]
    sweep = layout.SweepDir(tmp_path / "moons")
    manifest.write(sweep, manifest.Manifest.new("moons", "tensorflow", runs, PACKED))
    for run in runs:
        layout.write_text(sweep.history(run.run_id), HISTORY.format(best=0.8))
    got = collect.collect(sweep)
    assert got.summary["model.hidden"].tolist() == ["[64]"]
    assert got.epochs["model.hidden"].unique().tolist() == ["[64]"]


# Validation accuracy per epoch, one run each (Keras writes epoch 0 first): their bests at epochs 2, 1, 3
# (counted from 1, as result.json's best_epoch is), a tie at epochs 2 and 3 (the first counts) and a
# resumed run that repeated epochs 1 and 2 (0 and 1 in the file: the last row of each counts).
PEAKS = [
    "0,1.0,0.6\n1,1.0,0.9\n2,1.0,0.7\n",
    "0,1.0,0.95\n1,1.0,0.8\n2,1.0,0.85\n",
    "0,1.0,0.5\n1,1.0,0.6\n2,1.0,0.7\n",
    "0,1.0,0.4\n1,1.0,0.8\n2,1.0,0.8\n",
    "0,1.0,0.3\n1,1.0,0.99\n0,1.0,0.7\n1,1.0,0.75\n2,1.0,0.72\n",
    "0,1.0,0.1\n1,1.0,0.2\n2,1.0,0.3\n3,1.0,0.9\n4,1.0,0.2\n",
]


def test_the_epochs_row_at_a_runs_best_epoch_holds_its_best_value(tmp_path: Path) -> None:
    runs = expand(load_spec(EXAMPLES / "moons.toml"))
    sweep = layout.SweepDir(tmp_path / "moons")
    manifest.write(sweep, manifest.Manifest.new("moons", "tensorflow", runs, PACKED))
    bests = {}
    for run, peaks in zip(runs, PEAKS, strict=True):
        text = "epoch,loss,val_categorical_accuracy\n" + peaks
        layout.write_text(sweep.history(run.run_id), text)
        # What the run's own result.json says, from the same file.
        frame = pd.read_csv(io.StringIO(text))
        result = plan.summarize_history(frame, Objective("val_categorical_accuracy", "max"))
        bests[run.run_id] = (result["best_epoch"], result["best"]["val_categorical_accuracy"])
    assert list(bests.values()) == [(2, 0.9), (1, 0.95), (3, 0.7), (2, 0.8), (2, 0.75), (4, 0.9)]

    got = collect.collect(sweep)
    assert dict(zip(got.runs["run_id"], got.runs["best_epoch"], strict=True)) == {
        r: epoch for r, (epoch, _) in bests.items()
    }
    args = ["collect", "moons", "--results", str(tmp_path), "--epochs", "--format", "csv"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    epochs = pd.read_csv(io.StringIO(result.stdout))
    at = epochs.set_index(["run_id", "epoch"])["val_categorical_accuracy"]
    assert {run_id: at.get((run_id, epoch)) for run_id, (epoch, _) in bests.items()} == {
        run_id: value for run_id, (_, value) in bests.items()
    }
    assert epochs.groupby("run_id", sort=False)["epoch"].agg(["min", "max"]).values.tolist() == [
        [1, n] for n in (3, 3, 3, 3, 3, 5)
    ]


def digits_sweep(results: Path, unfinished: int = 23) -> layout.SweepDir:
    """The digits-depth example (8 configurations × 3 seeds) as if trained for 5 epochs: validation accuracy
    peaks at epoch 4 at 0.80 + 0.01·depth + 0.02·seed (+0.05 at learning rate 0.003). Run `unfinished`
    stopped after 3 epochs without a result."""
    spec = load_spec(EXAMPLES / "digits_depth.toml")
    runs = expand(spec)
    sweep = layout.SweepDir(results / spec.name)
    manifest.write(sweep, manifest.Manifest.new(spec.name, spec.backend, runs, spec.slurm))
    for i, run in enumerate(runs):
        hidden = run.settings.model.hidden
        sizes = [64, *hidden, 10]
        peak = 0.80 + 0.01 * len(hidden) + 0.02 * run.seed
        peak += 0.05 if run.settings.train.learning_rate == 0.003 else 0.0
        lines = ["epoch,categorical_accuracy,loss,val_categorical_accuracy,val_loss"]
        for epoch in range(3 if i == unfinished else 5):
            val = peak - 0.02 * (3 - epoch) ** 2
            lines.append(f"{epoch},{val + 0.02},{0.98 - val},{val},{1 - val}")
        sweep.run_dir(run.run_id).mkdir(parents=True)
        sweep.history(run.run_id).write_text("\n".join(lines) + "\n")
        if i != unfinished:
            result = {
                "status": "COMPLETED",
                "params": sum((a + 1) * b for a, b in itertools.pairwise(sizes)),
                "seconds_per_epoch": 0.1 * len(hidden),
                "samples_per_second": 1000.0 / len(hidden),
                "test": {
                    "accuracy": peak - 0.01,
                    "f1_macro": peak - 0.02,
                    "precision_macro": peak,
                    "recall_macro": peak,
                },
            }
            sweep.result(run.run_id).write_text(json.dumps(result))
    return sweep


def _collect(results: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["collect", "digits-depth", "--results", str(results), *args])


def test_cli_table_shows_a_partial_sweep_and_writes_the_whole_summary_csv(tmp_path: Path) -> None:
    sweep = digits_sweep(tmp_path)
    result = _collect(tmp_path, "--top", "2")
    assert result.exit_code == 0, result.output
    assert "digits-depth: 2 of 8 configurations, 6 runs" in result.stdout
    full = pd.read_csv(sweep.summary_csv)
    assert len(full) == 8
    last = full.iloc[-1]
    assert (last["config_id"], last["runs_finished"], last["runs_total"]) == (
        "hidden-32__learning_rate-0.003",
        2,
        3,
    )
    assert last["outcomes"] == "2 COMPLETED, 1 UNFINISHED"


def test_cli_sorts_filters_and_keeps_the_top(tmp_path: Path) -> None:
    digits_sweep(tmp_path)
    result = _collect(tmp_path, "--format", "csv", "--sort", "test F1", "--top", "3", "--where", "depth=1")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(io.StringIO(result.stdout))
    assert rows["config_id"].tolist() == [
        "hidden-128__learning_rate-0.003",
        "hidden-32__learning_rate-0.003",
        "hidden-128__learning_rate-0.001",
    ]
    assert rows["test_f1_macro_mean"].tolist() == pytest.approx([0.86, 0.85, 0.81])


def test_cli_json_has_numbers_and_lists_where_the_table_has_text(tmp_path: Path) -> None:
    digits_sweep(tmp_path)
    where = ("--where", "model.hidden=[64,32]", "--ascending", "--sort", "params")
    result = _collect(tmp_path, "--format", "json", *where)
    assert result.exit_code == 0, result.output
    assert [
        (r["model.hidden"], r["train.learning_rate"], r["runs_finished"], r["runs_total"])
        for r in json.loads(result.stdout)
    ] == [([64, 32], 0.001, 3, 3), ([64, 32], 0.003, 3, 3)]
    epochs = _collect(tmp_path, "--format", "json", "--epochs", *where)
    assert {tuple(r["model.hidden"]) for r in json.loads(epochs.stdout)} == {(64, 32)}
    table = _collect(tmp_path, *where)
    assert [line.split()[:5] for line in table.stdout.splitlines() if line.startswith("64x32")] == [
        ["64x32", "0.001", "2", "6,570", "3/3"],
        ["64x32", "0.003", "2", "6,570", "3/3"],
    ]


def test_cli_epochs_is_the_long_form_of_every_epoch(tmp_path: Path) -> None:
    digits_sweep(tmp_path)
    result = _collect(tmp_path, "--epochs", "--format", "csv")
    assert result.exit_code == 0, result.output
    epochs = pd.read_csv(io.StringIO(result.stdout))
    assert epochs.columns.tolist() == [
        "run_id",
        "config_id",
        "seed",
        "model.hidden",  # the settings that vary, so the epochs can be grouped without the summary
        "train.learning_rate",
        "epoch",
        "categorical_accuracy",
        "loss",
        "val_categorical_accuracy",
        "val_loss",
    ]
    assert len(epochs) == 23 * 5 + 3
    assert not epochs.duplicated(["run_id", "epoch"]).any()
    first = epochs.iloc[0]
    assert (first["model.hidden"], first["train.learning_rate"]) == ("[20, 50, 70, 100, 70, 50, 20]", 0.001)


@needs_pyarrow
def test_cli_parquet_goes_to_a_file(tmp_path: Path) -> None:
    digits_sweep(tmp_path)
    out = tmp_path / "epochs.parquet"
    result = _collect(tmp_path, "--epochs", "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out)) == 23 * 5 + 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sort", "nope"], "hpcjobs: error: --sort 'nope': unknown key 'nope'; valid keys: model.hidden"),
        (
            ["--where", "model.hiden=[3]"],
            "hpcjobs: error: --where 'model.hiden=[3]': unknown key 'model.hiden'",
        ),
        (["--where", "depth"], "hpcjobs: error: --where 'depth': expected KEY=VALUE such as "),
    ],
)
def test_cli_bad_sort_or_where_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    digits_sweep(tmp_path)
    result = _collect(tmp_path, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


def test_cli_parquet_without_out_is_one_error_line(tmp_path: Path) -> None:
    digits_sweep(tmp_path)
    result = _collect(tmp_path, "--format", "parquet")
    assert result.exit_code == 2
    assert result.stderr == "hpcjobs: error: --format parquet writes a binary file: expected --out FILE\n"


def test_cli_where_matching_nothing_says_so_on_stderr_and_exits_1(tmp_path: Path) -> None:
    digits_sweep(tmp_path)
    result = _collect(tmp_path, "--where", "model.hidden=[999]")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "hpcjobs: no configuration matches model.hidden=[999]: "
        "model.hidden is one of 20x50x70x100x70x50x20, 64x32, 128, 32\n"
    )


def test_cli_parquet_without_pyarrow_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digits_sweep(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    result = _collect(tmp_path, "--format", "parquet", "--out", str(tmp_path / "s.parquet"))
    assert result.exit_code == 2
    assert "--format parquet needs pyarrow: pip install 'hpcjobs[parquet]'" in result.stderr
    assert not (tmp_path / "s.parquet").exists()


def test_piped_output_fits_columns_without_trailing_spaces_and_names_every_column_left_out(
    tmp_path: Path,
) -> None:
    """A pipe used to get 160 columns whatever COLUMNS said, cells padded with spaces, and a `--wide adds:`
    line cut at the width."""
    digits_sweep(tmp_path)
    result = CliRunner().invoke(
        cli, ["collect", "digits-depth", "--results", str(tmp_path)], env={"COLUMNS": "50"}
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 50 and line == line.rstrip() for line in lines), lines
    left_out = " ".join(lines[next(i for i, x in enumerate(lines) if x.startswith("--wide adds:")) :])
    for header in ("test F1", "best epoch", "final loss", "params", "s/epoch", "start-up s", "samples/s"):
        assert header in left_out
