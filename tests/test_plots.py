"""Plots: the numbers behind the figures, and real PNG files from `collect --plot`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from hpcjobs import collect, plots
from hpcjobs.cli import cli

from .test_collect import digits_sweep


def test_curve_bands_are_mean_min_max_over_seeds_per_epoch_as_the_epochs_table_numbers_it() -> None:
    # config_id is categorical in the epochs table: an unused category (after --where) must not show up.
    epochs = pd.DataFrame(
        {
            "config_id": pd.Categorical(["b", "b", "b", "b", "a", "a"], categories=["a", "b", "z"]),
            "epoch": [1, 2, 1, 2, 1, 2],
            "val_loss": [1.0, 0.5, 3.0, np.nan, 2.0, 1.0],
        }
    )
    bands = plots.curve_bands(epochs, "val_loss")
    assert bands.values.tolist() == [
        ["a", 1, 2.0, 2.0, 2.0],
        ["a", 2, 1.0, 1.0, 1.0],
        ["b", 1, 2.0, 1.0, 3.0],
        ["b", 2, 0.5, 0.5, 0.5],  # the seed without a value leaves the band
    ]


def test_series_group_configurations_by_the_settings_other_than_the_architecture() -> None:
    summary = pd.DataFrame(
        {
            "config_id": ["a", "b", "c"],
            "model.hidden": ["[8]", "[8]", "[16]"],
            "train.learning_rate": [0.001, 0.003, 0.001],
        }
    )
    assert {k: v["config_id"].tolist() for k, v in plots.series(summary).items()} == {
        "lr=0.001": ["a", "c"],
        "lr=0.003": ["b"],
    }
    assert list(plots.series(summary.drop(columns="train.learning_rate"))) == [""]


def test_colour_says_the_architecture_and_the_line_style_the_learning_rate() -> None:
    summary = pd.DataFrame(
        {
            "config_id": ["a", "b", "c", "d"],
            "model.hidden": ["[8]", "[8]", "[16]", "[16]"],
            "train.learning_rate": [0.001, 0.003, 0.001, 0.003],
        }
    )
    assert plots.curve_styles(summary) == {"a": (0, "-"), "c": (1, "-"), "b": (0, "--"), "d": (1, "--")}


@pytest.mark.parametrize(
    ("last", "ticks"),
    [
        (1, [1]),
        (2, [1, 2]),
        (5, [1, 2, 3, 4, 5]),
        (20, [1, 5, 10, 15, 20]),
        (30, [1, 5, 10, 15, 20, 25, 30]),
        (31, [1, 5, 10, 15, 20, 25, 31]),
        (150, [1, 25, 50, 75, 100, 125, 150]),
    ],
)
def test_epoch_ticks_start_at_1_and_end_at_the_last_epoch(last: int, ticks: list[int]) -> None:
    assert plots.epoch_ticks(last) == ticks


def _assert_real_image(path: Path) -> None:
    from matplotlib.image import imread

    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] >= 300 and pixels.shape[1] >= 400, pixels.shape
    assert pixels.reshape(-1, pixels.shape[2]).std(axis=0).max() > 0.05  # not all one colour


def test_write_plots_writes_learning_curves_and_best_value_against_depth_and_size(tmp_path: Path) -> None:
    sweep = digits_sweep(tmp_path)
    written = plots.write_plots(sweep, collect.collect(sweep))
    assert written == [
        sweep.plot("learning_curves"),
        sweep.plot("best_val_vs_depth"),
        sweep.plot("best_val_vs_params"),
    ]
    for path in written:
        assert path.parent == sweep.plots_dir
        _assert_real_image(path)


def test_without_parameter_counts_there_is_no_size_figure(tmp_path: Path) -> None:
    sweep = digits_sweep(tmp_path)
    col = collect.collect(sweep)
    col = collect.Collection(col.runs, col.epochs, col.summary.drop(columns="params"), col.problems)
    assert list(plots.figures(col, "x")) == ["learning_curves", "best_val_vs_depth"]


def test_cli_plot_prints_the_files_it_wrote(tmp_path: Path) -> None:
    sweep = digits_sweep(tmp_path)
    result = CliRunner().invoke(
        cli, ["collect", "digits-depth", "--results", str(tmp_path), "--plot", "--where", "depth=1"]
    )
    assert result.exit_code == 0, result.output
    names = ("learning_curves", "best_val_vs_depth", "best_val_vs_params")
    assert result.stderr == "".join(f"wrote {sweep.plot(n)}\n" for n in names)
    for name in names:
        _assert_real_image(sweep.plot(name))
