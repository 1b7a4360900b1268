"""Figures of a collected sweep: learning curves, and best validation value against depth and size.

Drawn on matplotlib.figure.Figure, whose savefig renders with the Agg canvas, never through pyplot: no
display or GUI backend is touched on a login node and no global figure state is kept. matplotlib is
imported inside the functions so that `collect` without --plot does not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import layout, search
from .collect import Collection, rank_column
from .labels import compact_value, short_key, short_metric, short_run_label
from .vocab import Objective

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LEGEND_MAX = 24  # more lines than this make a legend taller than the figure: colours alone then
DPI = 100


def curve_bands(epochs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per configuration and epoch (from 1, as the epochs table has it): mean, min and max of `metric` over
    seeds."""
    rows = epochs.dropna(subset=[metric])
    bands = rows.groupby(["config_id", "epoch"], sort=False, observed=True)[metric].agg(
        ["mean", "min", "max"]
    )
    return bands.reset_index().sort_values(["config_id", "epoch"], kind="stable")


LINES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")


def series(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The summary's configurations grouped by the settings other than the architecture, one marker series
    each, labelled like 'lr=0.003'; one unlabelled series when only the architecture varies."""
    others = [c for c in summary.columns if "." in c and c != "model.hidden"]
    if not others:
        return {"": summary}
    groups = summary.groupby(others, sort=False, dropna=False)
    return {
        " ".join(f"{short_key(c)}={v}" for c, v in zip(others, key, strict=True)): group
        for key, group in ((k if isinstance(k, tuple) else (k,), g) for k, g in groups)
    }


def curve_styles(summary: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """Config id -> (colour number, line style): the colour says the architecture, the line style the
    other settings (the learning rate...), so that no setting is told by colour alone."""
    hidden = summary["model.hidden"] if "model.hidden" in summary else pd.Series("", index=summary.index)
    architectures = list(dict.fromkeys(hidden))
    return {
        config_id: (architectures.index(hidden[i]), LINES[n % len(LINES)])
        for n, group in enumerate(series(summary).values())
        for i, config_id in zip(group.index, group["config_id"], strict=True)
    }


def epoch_ticks(last: int, most: int = 8) -> list[int]:
    """Epoch ticks that start at 1 and end at the last epoch, at a round step between: 1 5 10 … 30."""
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000) if last / s <= most - 1)
    middle = [t for t in range(step, last, step) if t > 1 and last - t >= step / 2]
    return sorted({1, *middle, last})


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.95, n)]


def learning_curves(col: Collection, metric: str, title: str) -> Figure:
    """Training and validation `metric` per epoch: a line per configuration (mean over seeds) and a band
    from the lowest to the highest seed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    config_ids = list(col.summary["config_id"])
    styles = curve_styles(col.summary)
    colors = _colors(1 + max((c for c, _ in styles.values()), default=0))
    stem = metric.removeprefix("val_")
    last = int(col.epochs["epoch"].max()) if len(col.epochs) else 1
    # A halving search's configurations stopped below its highest rung: thinner lines.
    rungs = col.summary["rung"] if "rung" in col.summary else pd.Series(0, index=col.summary.index)
    stopped = set(col.summary.loc[rungs < rungs.max(), "config_id"])
    for ax, name, kind in zip(axes, (stem, metric), ("training", "validation"), strict=True):
        ax.set_title(f"{kind} {short_metric(stem)}")
        ax.set_xlabel("epoch")
        ax.set_xticks(epoch_ticks(last))
        ax.grid(alpha=0.3)
        if name not in col.epochs:
            continue
        bands = dict(list(curve_bands(col.epochs, name).groupby("config_id", observed=True)))
        for config_id in (c for c in config_ids if c in bands):  # the table's order, for the legend
            band, (color, line) = bands[config_id], styles[config_id]
            label = short_run_label(config_id)
            width = 0.6 if config_id in stopped else 1.4
            ax.plot(
                band["epoch"], band["mean"], color=colors[color], linestyle=line, linewidth=width, label=label
            )
            ax.fill_between(
                band["epoch"], band["min"], band["max"], color=colors[color], alpha=0.15, linewidth=0
            )
    axes[0].set_ylabel(f"{short_metric(stem)} (line: mean over seeds, band: min–max)")
    if 0 < len(config_ids) <= LEGEND_MAX:
        handles = axes[1].get_legend_handles_labels()
        fig.legend(*handles, loc="outside lower center", ncols=min(4, len(config_ids)), fontsize="small")
    fig.suptitle(title)
    return fig


def versus(summary: pd.DataFrame, x: str, metric_column: str, title: str) -> Figure:
    """Mean best validation value against `x` (depth or params), one point per configuration with
    error bars of one std over seeds; params on a log axis."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    groups = series(summary)
    for i, (color, (label, group)) in enumerate(zip(_colors(len(groups)), groups.items(), strict=True)):
        # Series side by side, so that error bars at one depth (or one size) do not hide each other.
        shift = i - (len(groups) - 1) / 2
        xs = group[x].astype(float) * 10 ** (0.02 * shift) if x == "params" else group[x] + 0.08 * shift
        std = group.get(metric_column.replace("_mean", "_std"))
        ys = group[metric_column]
        yerr = None if std is None else std.fillna(0.0)
        marker = MARKERS[i % len(MARKERS)]
        ax.errorbar(xs, ys, yerr=yerr, fmt=marker, capsize=3, color=color, label=label or None)
        if len(summary) <= LEGEND_MAX and "model.hidden" in group:
            for xy, hidden in zip(zip(xs, ys, strict=True), group["model.hidden"], strict=True):
                label = compact_value(hidden)
                ax.annotate(label, xy, xytext=(5, -3), textcoords="offset points", fontsize="x-small")
    if x == "params":
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
    else:
        ax.set_xlabel("depth (hidden layers)")
        ax.set_xticks(sorted(summary["depth"].unique()))
    stem = metric_column.removeprefix("best_").removesuffix("_mean")
    ax.set_ylabel(f"best {short_metric(stem)} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    if len(groups) > 1:
        ax.legend(fontsize="small")
    ax.set_title(title)
    return fig


def search_curve(points: list[tuple[int, float, str]], objective: Objective, title: str) -> Figure:
    """A halving search: the best configuration's mean validation value at the end of each rung, against
    the epochs the search had trained by then."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    xs, ys = [p[0] for p in points], [objective.sign * p[1] for p in points]
    ax.plot(xs, ys, marker="o", drawstyle="steps-post" if len(xs) > 1 else "default")
    for n, (x, y, config_id) in enumerate(zip(xs, ys, (p[2] for p in points), strict=True)):
        ax.annotate(
            f"rung {n + 1}: {short_run_label(config_id)}",
            (x, y),
            xytext=(5, -10),
            textcoords="offset points",
            fontsize="x-small",
        )
    ax.set_xlabel("epochs trained by the search so far (all runs)")
    ax.set_ylabel(f"best {short_metric(objective.name)} of the rung (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return fig


def figures(col: Collection, name: str) -> dict[str, Figure]:
    """Plot name -> figure, for the figures this collection has the data for."""
    out = {}
    monitored = col.runs.get("monitor", pd.Series(dtype=object)).dropna()
    if len(monitored) and len(col.epochs):
        out["learning_curves"] = learning_curves(col, str(monitored.iloc[0]), f"{name}: learning curves")
    column = rank_column(col.summary)
    if column is not None:
        stem = short_metric(column.removeprefix("best_").removesuffix("_mean"))
        out["best_val_vs_depth"] = versus(col.summary, "depth", column, f"{name}: best {stem} vs depth")
        sized = col.summary.dropna(subset=["params"]) if "params" in col.summary else col.summary.iloc[:0]
        if len(sized):
            out["best_val_vs_params"] = versus(sized, "params", column, f"{name}: best {stem} vs size")
    return out


def write_plots(sweep: layout.SweepDir, col: Collection) -> list[Path]:
    """Writes the figures as PNGs into the sweep's plots folder; returns the files written."""
    written = []
    found = figures(col, sweep.name)
    state = search.read(sweep)
    monitored = col.runs.get("monitor", pd.Series(dtype=object)).dropna()
    points = search.progress(state) if state else []
    if points and len(monitored):
        objective = Objective.for_metrics([str(monitored.iloc[0]).removeprefix("val_")])
        found["search"] = search_curve(points, objective, f"{sweep.name}: the search")
    for name, fig in found.items():
        path = sweep.plot(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
        written.append(path)
    return written
