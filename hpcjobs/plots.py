"""Figures of a collected sweep: learning curves, and best validation value against depth and size.

Drawn on matplotlib.figure.Figure, whose savefig renders with the Agg canvas, never through pyplot: no
display or GUI backend is touched on a login node and no global figure state is kept. matplotlib is
imported inside the functions so that `collect` without --plot does not pay for it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
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


def colour_settings(summary: pd.DataFrame) -> list[str]:
    """The numeric settings other than the architecture with more values than there are markers (a search's
    draws, a long grid axis): told by a colour bar, the first of them, not by a legend entry per value."""
    return [
        c
        for c in summary.columns
        if "." in c
        and c != "model.hidden"
        and pd.api.types.is_numeric_dtype(summary[c])
        and summary[c].nunique() > len(MARKERS)
    ]


def wide_range(values: pd.Series) -> bool:
    """Positive values spanning a factor of 10 or more (a log-uniform learning rate): a log colour scale."""
    low, high = float(values.min()), float(values.max())
    return low > 0 and high >= 10 * low


def series(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The summary's configurations grouped by the few-valued settings other than the architecture, one
    marker series each, labelled like 'lr=0.003'; one unlabelled series when no such setting varies."""
    many = colour_settings(summary)
    others = [c for c in summary.columns if "." in c and c != "model.hidden" and c not in many]
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


def _colour_by_setting(fig: Figure, ax: Any, summary: pd.DataFrame) -> dict[str, Any]:
    """Config id -> the colour of its value of the first many-valued setting, whose colour bar this draws
    beside `ax` (log-scaled over a wide range); empty when no setting has many values."""
    many = colour_settings(summary)
    if not many:
        return {}
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, LogNorm, Normalize

    values = summary[many[0]].astype(float)
    log = wide_range(values)
    norm = (LogNorm if log else Normalize)(values.min(), values.max())
    cmap = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.9, 256)))  # its pale yellow end left out
    label = short_key(many[0]) + (" (log scale)" if log else "")
    if len(many) > 1:
        label += f"; not shown: {', '.join(short_key(c) for c in many[1:])}"
    bar = fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=label, pad=0.02)
    bar.ax.yaxis.set_major_formatter("{x:g}")  # 0.001, as the tables write a learning rate
    if log:  # a range of two decades may hold one power of ten: 2 and 5 times each are named too
        bar.ax.yaxis.set_minor_formatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    return {c: cmap(norm(v)) for c, v in zip(summary["config_id"], values, strict=True)}


def log_epochs(ends: Sequence[int]) -> bool:
    """A log epoch axis where the configurations' curves end far apart (a halving search's rungs, early
    stopping): the longest 8 epochs or more and 4x the shortest. A linear one would squeeze the short
    curves into its left edge; a search's eta-fold rungs get equal widths on a log one."""
    return bool(ends) and max(ends) >= 8 and max(ends) >= 4 * min(ends)


def log_epoch_ticks(last: int, rungs: Sequence[int] = ()) -> list[int]:
    """Ticks of a log epoch axis from 1 to the last epoch: a search's rung ends, else 1 2 5 10 20 50 …"""
    marks = [e for e in rungs if e < last] or [
        m * 10**k for k in range(len(str(last))) for m in (1, 2, 5) if m * 10**k * 1.5 <= last
    ]
    return sorted({1, *marks, last})


def _epoch_axis(ax: Any, last: int, log: bool, rungs: Sequence[int]) -> None:
    """Epochs 1..last, linear or log; a search's rungs parted by dotted lines and named along the top."""
    from matplotlib.ticker import NullLocator

    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
    ticks = log_epoch_ticks(last, rungs) if log else epoch_ticks(last)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("epoch (log scale)" if log else "epoch")
    ends = [e for e in rungs if e <= last]
    if len(ends) < 2:
        return
    for end in ends[:-1]:
        ax.axvline(end, color="0.4", linestyle=":", linewidth=1)
    starts = [1, *ends[:-1]]
    middles = [(a * b) ** 0.5 if log else (a + b) / 2 for a, b in zip(starts, ends, strict=True)]
    top = ax.secondary_xaxis("top")
    top.set_xticks(middles, [f"rung {n}" for n in range(1, len(ends) + 1)], fontsize="small")
    top.xaxis.set_minor_locator(NullLocator())
    top.tick_params(length=0)


def learning_curves(col: Collection, metric: str, title: str, rungs: Sequence[int] = ()) -> Figure:
    """Training and validation `metric` per epoch: a line per configuration (mean over seeds) and a band
    from the lowest to the highest seed. `rungs`: a halving search's epochs per rung, marked on the axis."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    config_ids = list(col.summary["config_id"])
    styles = curve_styles(col.summary)
    colors = _colors(1 + max((c for c, _ in styles.values()), default=0))
    colour_of = _colour_by_setting(fig, list(axes), col.summary) or {
        c: colors[n] for c, (n, _) in styles.items()
    }
    stem = metric.removeprefix("val_")
    names = [n for n in (stem, metric) if n in col.epochs]
    bands = {n: dict(list(curve_bands(col.epochs, n).groupby("config_id", observed=True))) for n in names}
    ends = [int(b["epoch"].max()) for by_config in bands.values() for b in by_config.values()]
    # A halving search's configurations stopped below its highest rung: thinner lines.
    reached = col.summary["rung"] if "rung" in col.summary else pd.Series(0, index=col.summary.index)
    stopped = set(col.summary.loc[reached < reached.max(), "config_id"])
    for ax, name, kind in zip(axes, (stem, metric), ("training", "validation"), strict=True):
        ax.set_title(f"{kind} {short_metric(stem)}")
        _epoch_axis(ax, max(ends, default=1), log_epochs(ends), rungs)
        ax.grid(alpha=0.3)
        drawn = bands.get(name, {})
        for config_id in (c for c in config_ids if c in drawn):  # the table's order, for the legend
            band, color, line = drawn[config_id], colour_of[config_id], styles[config_id][1]
            label = short_run_label(config_id)
            width = 0.6 if config_id in stopped else 1.4
            ax.plot(band["epoch"], band["mean"], color=color, linestyle=line, linewidth=width, label=label)
            ax.fill_between(band["epoch"], band["min"], band["max"], color=color, alpha=0.15, linewidth=0)
    axes[0].set_ylabel(f"{short_metric(stem)} (line: mean over seeds, band: min–max)")
    if 0 < len(config_ids) <= LEGEND_MAX:
        handles = axes[1].get_legend_handles_labels()
        fig.legend(*handles, loc="outside lower center", ncols=min(4, len(config_ids)), fontsize="small")
    fig.suptitle(title)
    return fig


def spread(at: pd.Series, order: pd.Series, width: float = 0.6) -> pd.Series:
    """Offsets that set the configurations sharing a value of `at` (a depth) side by side within `width`, in
    the order of `order` (the colour setting): a column of points that reads as a gradient, none hidden."""
    rank = order.groupby(at).rank(method="first")
    count = at.map(at.value_counts())
    return (rank - (count + 1) / 2) * width / count


def versus(summary: pd.DataFrame, x: str, metric_column: str, title: str) -> Figure:
    """Mean best validation value against `x` (depth or params), one point per configuration with
    error bars of one std over seeds; params on a log axis. A many-valued setting is the points' colour."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    groups = series(summary)
    colour_of = _colour_by_setting(fig, ax, summary)
    many = colour_settings(summary)
    offsets = spread(summary["depth"], summary[many[0]]) if many and x == "depth" else None
    handles = []
    for i, (color, (label, group)) in enumerate(zip(_colors(len(groups)), groups.items(), strict=True)):
        # Series side by side, so that error bars at one depth (or one size) do not hide each other.
        shift = i - (len(groups) - 1) / 2
        if offsets is not None:
            xs = group[x] + offsets[group.index]
        elif x == "params":
            xs = group[x].astype(float) * 10 ** (0.02 * shift)
        else:
            xs = group[x] + 0.08 * shift
        std = group.get(metric_column.replace("_mean", "_std"))
        ys = group[metric_column]
        yerr = None if std is None else std.fillna(0.0)
        marker = MARKERS[i % len(MARKERS)]
        if colour_of:
            colours = [colour_of[c] for c in group["config_id"]]
            if yerr is not None:
                ax.vlines(xs, ys - yerr, ys + yerr, colors=colours, linewidth=1)
            ax.scatter(xs, ys, c=colours, marker=marker, edgecolors="0.2", linewidths=0.5, zorder=3)
            handles.append(Line2D([], [], color="0.5", marker=marker, linestyle="none", label=label))
        else:
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
        ax.legend(handles=handles or None, fontsize="small")
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


def figures(col: Collection, name: str, rungs: Sequence[int] = ()) -> dict[str, Figure]:
    """Plot name -> figure, for the figures this collection has the data for; `rungs`: a halving search's
    epochs per rung."""
    out = {}
    monitored = col.runs.get("monitor", pd.Series(dtype=object)).dropna()
    if len(monitored) and len(col.epochs):
        title = f"{name}: learning curves"
        out["learning_curves"] = learning_curves(col, str(monitored.iloc[0]), title, rungs)
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
    state = search.read(sweep)
    found = figures(col, sweep.name, state.epochs if state else ())
    monitored = col.runs.get("monitor", pd.Series(dtype=object)).dropna()
    points = search.progress(state) if state else []
    if points and len(monitored):
        objective = Objective.for_metrics([str(monitored.iloc[0]).removeprefix("val_")])
        found["search"] = search_curve(points, objective, f"{sweep.name}: the search")
    for name, fig in found.items():
        path = sweep.plot(name)
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=DPI)
        layout.write_bytes(path, png.getvalue())  # atomic, and an error names the file
        written.append(path)
    return written
