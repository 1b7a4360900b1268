"""Plots: the numbers behind the figures, and real PNG files from `collect --plot`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from hpcjobs import collect, layout, manifest, plots, search
from hpcjobs.cli import cli
from hpcjobs.labels import short_run_label
from hpcjobs.settings import Run
from hpcjobs.spec import expand, load_spec

from .conftest import EXAMPLES
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


def quest_sweep(results: Path) -> layout.SweepDir:
    """The mnist quest's halving search (27 drawn configurations × 2 seeds, rungs of 2, 6, 18 and 54 epochs)
    as if trained: validation accuracy climbs to 0.95 - 0.005·depth at a speed of 300·learning rate per
    epoch; each rung keeps the best third, the pruned runs' histories end at their rung."""
    spec = load_spec(EXAMPLES / "mnist_quest.toml")
    runs = expand(spec)
    sweep = layout.SweepDir(results / spec.name)
    manifest.write(sweep, manifest.Manifest.new(spec.name, spec.backend, runs, spec.slurm))

    def accuracy(run: Run, epochs: int) -> Any:
        top = 0.95 - 0.005 * len(run.settings.model.hidden) + 0.01 * run.seed
        return top * (1 - np.exp(-np.arange(1, epochs + 1) * 300 * run.settings.train.learning_rate))

    config_runs: dict[str, list[Run]] = {}
    for run in runs:
        config_runs.setdefault(run.config_id, []).append(run)
    plan = search.rung_epochs(spec.search.min_epochs, spec.search.eta, spec.settings.train.epochs)
    state, alive = search.SearchState(plan, spec.search.eta, []), list(config_runs)
    for epochs in plan:
        scores = {c: float(np.mean([accuracy(r, epochs).max() for r in config_runs[c]])) for c in alive}
        ranked = search.rank(scores)
        ranking: list[tuple[str, float | None]] = [(c, scores[c]) for c in ranked]
        state.rungs.append(
            search.Rung(epochs, [r.run_id for c in alive for r in config_runs[c]], ranking=ranking)
        )
        kept = ranked[: search.keep(len(alive), spec.search.eta)] if epochs < plan[-1] else []
        for run in (r for c in alive if c not in kept for r in config_runs[c]):
            _write_run(sweep, run, accuracy(run, epochs), "COMPLETED" if epochs == plan[-1] else "PRUNED")
        alive = kept
    search.write(sweep, state)
    return sweep


def _write_run(sweep: layout.SweepDir, run: Run, val: np.ndarray, status: str) -> None:
    lines = ["epoch,categorical_accuracy,loss,val_categorical_accuracy,val_loss"]
    lines += [f"{e},{v + 0.02},{1.02 - v},{v},{1 - v}" for e, v in enumerate(val)]
    layout.write_text(sweep.history(run.run_id), "\n".join(lines) + "\n")
    sizes = [784, *run.settings.model.hidden, 10]
    params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    layout.write_text(sweep.result(run.run_id), json.dumps({"status": status, "params": params}))


def _lines(ax: Any) -> dict[str, tuple[list[float], list[float]]]:
    """Label -> x and y of each labelled line (a curve, not a rung's boundary)."""
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }


def _quest_summary(rates: int) -> pd.DataFrame:
    """27 configurations of depth 1-3 and `rates` learning rates from 1e-4 to 1e-2 (log-spaced), in turn."""
    lr = np.geomspace(1e-4, 1e-2, rates)
    return pd.DataFrame(
        {
            "config_id": [f"c{i}" for i in range(27)],
            "model.hidden": [json.dumps([16] * (1 + i % 3)) for i in range(27)],
            "train.learning_rate": [lr[i % rates] for i in range(27)],
            "depth": [1 + i % 3 for i in range(27)],
            "params": [1000.0 * (i + 1) for i in range(27)],
            "best_val_acc_mean": np.linspace(0.5, 0.9, 27),
            "best_val_acc_std": [0.01] * 27,
        }
    )


def test_a_many_valued_numeric_setting_is_a_colour_bar_and_a_few_valued_one_a_legend() -> None:
    summary = _quest_summary(27)
    assert plots.colour_settings(summary) == ["train.learning_rate"]
    assert plots.colour_settings(_quest_summary(2)) == []
    named = summary.assign(**{"model.activation": [f"a{i}" for i in range(27)]})
    assert plots.colour_settings(named) == ["train.learning_rate"]  # many names are no colour scale
    assert list(plots.series(summary)) == [""]
    for x in ("depth", "params"):
        fig = plots.versus(summary, x, "best_val_acc_mean", "t")
        ax, bar = fig.axes
        assert ax.get_legend() is None
        assert (bar.get_ylabel(), bar.get_yscale()) == ("lr (log scale)", "log")
        fig = plots.versus(_quest_summary(2), x, "best_val_acc_mean", "t")
        (ax,) = fig.axes
        legend = ax.get_legend()
        assert legend is not None
        assert [t.get_text() for t in legend.get_texts()] == ["lr=0.0001", "lr=0.01"]


def test_a_narrow_range_gets_a_linear_colour_bar_and_a_second_many_valued_setting_is_named() -> None:
    summary = _quest_summary(27).assign(**{"train.learning_rate": np.linspace(1e-3, 5e-3, 27)})
    assert not plots.wide_range(summary["train.learning_rate"])
    assert plots.wide_range(pd.Series([1e-4, 1e-3]))
    assert not plots.wide_range(pd.Series([-1.0, 10.0]))
    assert plots.versus(summary, "depth", "best_val_acc_mean", "t").axes[1].get_ylabel() == "lr"
    both = summary.assign(**{"train.batch_size": range(16, 43)})
    assert (
        plots.versus(both, "depth", "best_val_acc_mean", "t").axes[1].get_ylabel() == "lr; not shown: batch"
    )


def test_spread_sets_the_points_of_one_depth_side_by_side_in_colour_order() -> None:
    depth = pd.Series([1, 2, 1, 1, 2, 3])
    rate = pd.Series([0.3, 0.1, 0.1, 0.2, 0.2, 0.5])
    assert plots.spread(depth, rate).round(3).tolist() == [0.2, -0.15, -0.2, 0.0, 0.15, 0.0]


@pytest.mark.parametrize(
    ("ends", "log"),
    [
        ([], False),
        ([20, 20], False),
        ([2, 6, 18, 54], True),
        ([2, 6], False),
        ([3, 12], True),
        ([5, 12], False),
    ],
)
def test_curves_that_end_far_apart_get_a_log_epoch_axis(ends: list[int], log: bool) -> None:
    assert plots.log_epochs(ends) is log


@pytest.mark.parametrize(
    ("last", "rungs", "ticks"),
    [
        (54, [2, 6, 18, 54], [1, 2, 6, 18, 54]),
        (18, [2, 6, 18, 54], [1, 2, 6, 18]),  # a search in flight
        (30, [], [1, 2, 5, 10, 20, 30]),
        (150, [], [1, 2, 5, 10, 20, 50, 100, 150]),
        (60, [], [1, 2, 5, 10, 20, 60]),  # 50 would crowd 60
    ],
)
def test_log_epoch_ticks_are_the_rung_ends_or_1_2_5(last: int, rungs: list[int], ticks: list[int]) -> None:
    assert plots.log_epoch_ticks(last, rungs) == ticks


def test_a_search_figures_tell_the_drawn_learning_rate_by_a_colour_bar_and_epochs_on_a_log_axis(
    tmp_path: Path,
) -> None:
    found = plots.figures(collect.collect(quest_sweep(tmp_path)), "q")
    for fig in found.values():
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
        assert [len(legend.get_texts()) for legend in legends if legend] == []
        assert fig.axes[-1].get_ylabel() == "lr (log scale)"
    assert [ax.get_xscale() for ax in found["learning_curves"].axes[:2]] == ["log", "log"]


def test_a_search_curves_are_on_a_log_axis_from_epoch_1_with_the_rungs_named_and_a_colour_bar(
    tmp_path: Path,
) -> None:
    sweep = quest_sweep(tmp_path)
    col = collect.collect(sweep)
    fig = plots.figures(col, "q", search.read(sweep).epochs)["learning_curves"]  # type: ignore[union-attr]
    *axes, bar = fig.axes
    assert not fig.legends and bar.get_ylabel() == "lr (log scale)"
    for ax in axes:
        assert ax.get_xscale() == "log"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "6", "18", "54"]
        (top,) = ax.child_axes
        assert [t.get_text() for t in top.get_xticklabels()] == ["rung 1", "rung 2", "rung 3", "rung 4"]
        lines = _lines(ax)
        assert len(lines) == 27
        assert sorted({(xs[0], xs[-1]) for xs, _ in lines.values()}) == [(1, 2), (1, 6), (1, 18), (1, 54)]


def test_a_grid_keeps_its_legend_and_linear_epochs_counted_as_best_epoch_counts(tmp_path: Path) -> None:
    col = collect.collect(digits_sweep(tmp_path))
    found = plots.figures(col, "d")
    (legend,) = found["learning_curves"].legends
    assert len(legend.get_texts()) == 8
    assert [len(f.axes) for f in found.values()] == [2, 1, 1]  # no colour bar
    for ax in found["learning_curves"].axes:
        assert ax.get_xscale() == "linear"
    # The curve peaks at the summary's best epoch: the plot and the tables count epochs alike.
    best = dict(zip(col.summary["config_id"], col.summary["best_epoch_mean"], strict=True))
    config_of = {short_run_label(c): c for c in best}
    for label, (xs, ys) in _lines(found["learning_curves"].axes[1]).items():
        assert xs[0] == 1
        assert xs[int(np.argmax(ys))] == best[config_of[label]]


def test_write_plots_of_a_search_adds_the_search_figure(tmp_path: Path) -> None:
    sweep = quest_sweep(tmp_path)
    written = plots.write_plots(sweep, collect.collect(sweep))
    names = ("learning_curves", "best_val_vs_depth", "best_val_vs_params", "search")
    assert written == [sweep.plot(n) for n in names]
    for path in written:
        _assert_real_image(path)
