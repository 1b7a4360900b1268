"""One history.csv: the parser both status and collect read it with, and the progress status shows."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hpcjobs import history
from hpcjobs.history import Progress

HISTORY = """\
epoch,categorical_accuracy,loss,val_categorical_accuracy,val_loss
0,0.50,0.70,0.55,0.69
1,0.80,0.40,0.85,0.38
"""

# --- parse_history ----------------------------------------------------------------------------------


def test_parse_history_returns_rows_as_written_with_missing_cells_as_nan() -> None:
    columns, rows = history.parse_history("epoch,loss,val_loss\n0,1.0,1.1\n1,0.8,NA\n1,0.7,\n")
    assert columns == ["epoch", "loss", "val_loss"]
    assert rows[0] == [0.0, 1.0, 1.1]
    assert rows[1][:2] == [1.0, 0.8] and math.isnan(rows[1][2])  # Keras' CSVLogger writes NA
    assert rows[2][:2] == [1.0, 0.7] and math.isnan(rows[2][2])  # an empty cell


def test_parse_history_of_nothing() -> None:
    assert history.parse_history("") == ([], [])
    assert history.parse_history("epoch,loss\n") == (["epoch", "loss"], [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epoch,loss,val_loss\n0,1.0,1.1\n1,0.8\n", "line 3 has 2 fields, the header 3"),
        ("loss,val_loss\n1.0,1.1\n", "no 'epoch' column"),
        ("epoch,loss\n0,1.0\n,0.9\n", "line 3 has no epoch number"),
        ("epoch,loss\n0,warm\n", "could not convert string to float: 'warm'"),
    ],
)
def test_parse_history_names_what_does_not_fit(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        history.parse_history(text)


# --- progress ---------------------------------------------------------------------------------------


def test_progress_counts_epochs_and_keeps_the_last_row() -> None:
    assert history.progress(HISTORY) == Progress(
        2,
        {
            "epoch": 1.0,
            "categorical_accuracy": 0.8,
            "loss": 0.4,
            "val_categorical_accuracy": 0.85,
            "val_loss": 0.38,
        },
    )


def test_progress_counts_a_repeated_epoch_of_a_resumed_run_once() -> None:
    text = "epoch,loss,val_loss\n0,1.0,1.1\n1,0.8,0.9\n1,0.7,0.75\n2,0.6,0.65\n"
    assert history.progress(text) == Progress(3, {"epoch": 2.0, "loss": 0.6, "val_loss": 0.65})


def test_progress_last_row_wins_for_the_latest_epoch() -> None:
    text = "epoch,loss,val_loss\n0,1.0,1.1\n1,0.8,0.9\n1,0.7,0.75\n"
    assert history.progress(text) == Progress(2, {"epoch": 1.0, "loss": 0.7, "val_loss": 0.75})


def test_progress_of_nothing() -> None:
    assert history.progress("") == Progress(0, {})
    assert history.progress("epoch,loss,val_loss\n") == Progress(0, {})


def test_progress_keeps_a_missing_cell_as_nan() -> None:
    got = history.progress("epoch,loss,val_loss\n0,0.5,NA\n")
    assert got.epochs_done == 1 and got.last["loss"] == 0.5 and math.isnan(got.last["val_loss"])


def test_progress_of_a_file_that_does_not_fit_is_an_error_as_for_collect() -> None:
    with pytest.raises(ValueError, match="could not convert string to float: 'warm'"):
        history.progress("epoch,loss,note\n0,0.5,warm\n")


def test_a_half_written_last_epoch_is_not_counted_yet() -> None:
    got = history.progress("epoch,loss,val_loss\n0,0.9,0.8\n1,0.5,0.4")
    assert (got.epochs_done, got.last["val_loss"]) == (1, 0.8)


# --- rows_before: a history cut back to a checkpoint ---------------------------------------------------


@pytest.mark.parametrize(
    ("epochs", "expected"),
    [
        (2, "epoch,loss\r\n0,0.9\r\n1,0.5\r\n"),
        (3, "epoch,loss\r\n0,0.9\r\n1,0.5\r\n2,0.4\r\n"),
        (0, ""),  # a resume from epoch 0 keeps no row, and no header for a file of no rows
    ],
)
def test_rows_before_keeps_the_epochs_before_the_checkpoint_as_written(epochs: int, expected: str) -> None:
    text = "epoch,loss\r\n0,0.9\r\n1,0.5\r\n2,0.4\r\n3,0.3"  # the last row half written
    assert history.rows_before(text, epochs) == expected


def test_rows_before_drops_lines_that_are_not_rows_of_the_header() -> None:
    text = "epoch,loss\n0,0.9\n\n1\n1,x\n\0\0\n1,0.5\n"
    assert history.rows_before(text, 5) == "epoch,loss\n0,0.9\n1,0.5\n"
    assert history.rows_before("loss\n0.9\n", 5) == ""  # no epoch column: no row to trust
    assert history.rows_before("", 5) == ""


def test_cut_rewrites_or_removes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(HISTORY)
    history.cut(path, 2)
    assert path.read_text() == HISTORY  # nothing after the checkpoint
    history.cut(path, 1)
    assert path.read_text() == HISTORY.splitlines(keepends=True)[0] + "0,0.50,0.70,0.55,0.69\n"
    history.cut(path, 0)
    assert not path.exists()
    history.cut(path, 3)  # no file: nothing to cut
    assert not path.exists()
