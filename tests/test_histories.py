"""History files: the per-file parser, the bulk parser and its fallbacks, per-run figures, the long form."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcjobs import histories, history, plan
from hpcjobs.vocab import Objective

HEADER = b"epoch,loss,val_categorical_accuracy,val_loss\n"

# --- parse_histories (many files) -------------------------------------------------------------------


def test_runs_sharing_a_header_become_one_block_in_order() -> None:
    blocks, problems = histories.parse_histories(
        {"a": HEADER + b"0,0.9,0.6,0.8\n1,0.5,0.7,0.4\n", "b": HEADER + b"0,0.8,0.65,0.7\n"}
    )
    assert problems == {}
    (block,) = blocks
    assert block.columns == ["epoch", "loss", "val_categorical_accuracy", "val_loss"]
    assert block.run_ids == ["a", "b"]
    assert block.lengths.tolist() == [2, 1]
    assert block.data.tolist() == [[0, 0.9, 0.6, 0.8], [1, 0.5, 0.7, 0.4], [0, 0.8, 0.65, 0.7]]


def test_a_resumed_run_keeps_the_last_row_of_a_repeated_epoch_in_epoch_order() -> None:
    text = b"epoch,loss\n0,1.0\n1,0.8\n2,0.75\n1,0.7\n2,0.6\n"  # requeued after epoch 0's backup
    (block,), _ = histories.parse_histories({"a": text, "b": b"epoch,loss\n0,0.5\n"})
    assert block.lengths.tolist() == [3, 1]
    assert block.data.tolist() == [[0, 1.0], [1, 0.7], [2, 0.6], [0, 0.5]]


def test_crlf_line_ends_and_na_cells_parse_like_the_rest() -> None:
    (block,), problems = histories.parse_histories(
        {"crlf": b"epoch,loss\r\n0,1.0\r\n1,NA\r\n", "plain": b"epoch,loss\n0,2.0\n1,1.5\n"}
    )
    assert problems == {}
    assert block.lengths.tolist() == [2, 2]
    assert block.data[[0, 2, 3], 1].tolist() == [1.0, 2.0, 1.5]
    assert math.isnan(block.data[1, 1])


@pytest.mark.parametrize("cut", [b"1,1.5", b"1,", b"1"])
def test_a_half_written_last_line_is_left_for_the_next_read(cut: bytes) -> None:
    # CSVLogger ends every row with a newline: without one, the row is being written (its numbers may be cut).
    (block,), problems = histories.parse_histories({"running": b"epoch,loss\n0,2.0\n" + cut})
    assert problems == {}
    assert block.data.tolist() == [[0.0, 2.0]]
    assert history.parse_history("epoch,loss\n0,2.0\n" + cut.decode()) == (["epoch", "loss"], [[0.0, 2.0]])


def test_a_bad_file_is_pinned_to_its_run_and_the_others_still_parse() -> None:
    good = HEADER + b"0,0.9,0.6,0.8\n"
    blocks, problems = histories.parse_histories(
        {
            "a": good,
            "ragged": HEADER + b"0,0.9\n",
            "text": HEADER + b"0,0.9,oops,0.8\n",
            "b": good,
            "no-epoch": b"loss\n0.9\n",
            "latin1": b"epoch,loss\n0,\xe9\n",
        }
    )
    assert problems == {
        "ragged": "line 2 has 2 fields, the header 4",
        "text": "could not convert string to float: 'oops'",
        "no-epoch": "no 'epoch' column in the header",
        "latin1": "'utf-8' codec can't decode byte 0xe9 in position 13: invalid continuation byte",
    }
    assert [(b.run_ids, b.lengths.tolist()) for b in blocks] == [(["a", "b"], [1, 1])]


def test_files_without_epochs_make_no_block_and_no_problem() -> None:
    assert histories.parse_histories({"empty": b"", "header": b"epoch,loss\n"}) == ([], {})


def test_runs_with_other_headers_get_their_own_block() -> None:
    blocks, _ = histories.parse_histories({"a": b"epoch,loss\n0,1.0\n", "b": b"epoch,loss,val_loss\n0,1,2\n"})
    assert [b.columns for b in blocks] == [["epoch", "loss"], ["epoch", "loss", "val_loss"]]


# --- history_stats ----------------------------------------------------------------------------------


def _stats(files: dict[str, bytes]) -> dict[str, dict[str, object]]:
    blocks, problems = histories.parse_histories(files)
    assert problems == {}
    return {run_id: s for block in blocks for run_id, s in histories.history_stats(block).items()}


def test_stats_take_every_validation_value_at_the_best_epoch_of_the_monitored_metric() -> None:
    stats = _stats({"a": HEADER + b"0,0.9,0.6,0.8\n1,0.5,0.85,0.4\n2,0.4,0.75,0.45\n"})
    assert stats["a"] == {
        "epochs_done": 3,
        "monitor": "val_categorical_accuracy",
        "best_epoch": 2,
        "best_val_categorical_accuracy": 0.85,
        "best_val_loss": 0.4,
        "final_loss": 0.4,
    }


def test_stats_monitor_val_loss_by_its_minimum_and_take_the_first_of_ties() -> None:
    stats = _stats({"a": b"epoch,loss,val_loss\n0,1.0,0.9\n1,0.8,0.7\n2,0.6,0.7\n"})
    assert (stats["a"]["monitor"], stats["a"]["best_epoch"], stats["a"]["best_val_loss"]) == (
        "val_loss",
        2,
        0.7,
    )


def test_stats_of_an_objective_never_recorded_have_no_best_epoch_as_in_result_json() -> None:
    stats = _stats({"a": HEADER + b"0,0.9,NA,0.8\n1,0.5,NA,0.4\n", "b": HEADER + b"0,0.9,0.5,0.8\n"})
    assert stats["a"]["best_epoch"] is None
    assert math.isnan(stats["a"]["best_val_loss"]) and math.isnan(stats["a"]["best_val_categorical_accuracy"])
    assert (stats["b"]["best_epoch"], stats["b"]["best_val_loss"]) == (1, 0.8)


def test_the_best_epoch_is_the_history_rows_keras_epoch_plus_1_as_result_json_counts_it() -> None:
    # A history whose first rows are gone (cut by hand): the best row is Keras' epoch 3, not the 2nd row.
    text = b"epoch,loss,val_loss\n2,1.0,0.9\n3,0.8,0.7\n4,0.6,0.8\n"
    result = plan.summarize_history(pd.read_csv(io.BytesIO(text)), Objective("val_loss", "min"))
    assert _stats({"a": text})["a"]["best_epoch"] == result["best_epoch"] == 4


def test_stats_without_validation_columns_have_no_monitor() -> None:
    assert _stats({"a": b"epoch,loss,categorical_accuracy\n0,0.9,0.6\n1,0.5,0.7\n"}) == {
        "a": {"epochs_done": 2, "final_loss": 0.5}
    }


@settings(max_examples=60, deadline=None)
@given(
    runs=st.lists(
        st.lists(st.one_of(st.floats(0.0, 1.0), st.just(math.nan)), min_size=1, max_size=6),
        min_size=1,
        max_size=5,
    )
)
def test_stats_over_a_block_match_a_run_by_run_reference(runs: list[list[float]]) -> None:
    files = {
        f"r{i}": b"epoch,val_accuracy\n" + b"".join(f"{e},{v!r}\n".encode() for e, v in enumerate(values))
        for i, values in enumerate(runs)
    }
    stats = _stats(files)
    for i, values in enumerate(runs):
        best = Objective("val_accuracy", "max").best_epoch(values)
        assert stats[f"r{i}"]["best_epoch"] == (None if best is None else best + 1)
        assert stats[f"r{i}"]["epochs_done"] == len(values)


# --- epochs_table -----------------------------------------------------------------------------------


def test_epochs_table_is_long_form_one_row_per_run_and_epoch_counted_from_1_like_best_epoch() -> None:
    blocks, _ = histories.parse_histories(
        {"c1__seed-0": HEADER + b"0,0.9,0.6,0.8\n1,0.5,0.7,0.4\n", "c1__seed-1": HEADER + b"0,0.8,0.65,0.7\n"}
    )
    metas = [{"run_id": f"c1__seed-{s}", "config_id": "c1", "seed": s} for s in (0, 1)]
    table = histories.epochs_table(blocks, metas)
    assert table.columns.tolist() == [
        "run_id",
        "config_id",
        "seed",
        "epoch",
        "loss",
        "val_categorical_accuracy",
        "val_loss",
    ]
    assert table.dtypes.astype(str).tolist()[:4] == ["category", "category", "int64", "int64"]
    assert table.astype({"run_id": str, "config_id": str}).values.tolist() == [
        ["c1__seed-0", "c1", 0, 1, 0.9, 0.6, 0.8],
        ["c1__seed-0", "c1", 0, 2, 0.5, 0.7, 0.4],
        ["c1__seed-1", "c1", 1, 1, 0.8, 0.65, 0.7],
    ]


def test_epochs_table_of_nothing_still_has_its_key_columns() -> None:
    assert histories.epochs_table([], []).columns.tolist() == ["run_id", "config_id", "seed", "epoch"]
