"""Formatting: status and summaries as rich Tables or text. Builds renderables; printing is the CLI's job."""

from __future__ import annotations

import io
import math
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .status import SweepStatus

STATE_STYLE = {
    "COMPLETED": "green",
    "RUNNING": "cyan",
    "PENDING": "yellow",
    "SUBMITTED": "yellow",
    "REQUEUED": "yellow",
    "DIVERGED": "magenta",
    "NOT_SUBMITTED": "dim",
}


SHORT = {
    "categorical_accuracy": "acc",
    "accuracy": "acc",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "categorical_crossentropy": "xent",
}


def short_metric(name: str) -> str:
    """val_categorical_accuracy -> val acc: columns people can scan."""
    stem = name.removeprefix("val_")
    return ("val " if name.startswith("val_") else "") + SHORT.get(stem, stem)


def _style(state: str) -> str:
    return STATE_STYLE.get(state, "red")


def counts_line(st: SweepStatus) -> Text:
    text = Text(f"{st.name}: {len(st.runs)} runs  ")
    for state, n in st.counts.items():
        text.append(f"{state} {n}  ", style=_style(state))
    return text


def status_table(st: SweepStatus, show_runs: bool = True) -> Group:
    parts: list[Any] = [counts_line(st)]
    if st.warning:
        parts.append(Text(f"warning: {st.warning}", style="yellow"))
    if show_runs:
        table = Table(box=None, pad_edge=False)
        for col, justify in (
            ("run", "left"),
            ("state", "left"),
            ("epochs", "right"),
            ("last val", "right"),
            ("elapsed", "right"),
            ("job", "left"),
            ("note", "left"),
        ):
            table.add_column(col, justify=justify, no_wrap=col != "note")  # type: ignore[arg-type]
        for r in st.runs:
            value = "" if r.value is None else f"{short_metric(r.metric)} {r.value:.4f}"
            table.add_row(
                r.run_id,
                Text(r.state, style=_style(r.state)),
                f"{r.epochs_done}/{r.epochs}",
                value,
                r.elapsed,
                r.job,
                Text(r.note, style="dim"),
            )
        parts.append(table)
    return Group(*parts)


def sweeps_table(statuses: list[SweepStatus]) -> Table:
    table = Table(title="sweeps")
    table.add_column("sweep")
    table.add_column("runs", justify="right")
    table.add_column("states")
    for st in statuses:
        table.add_row(st.name, str(len(st.runs)), counts_line(st)[len(st.name) + 2 :])
    return table


def mean_std(mean: Any, std: Any, digits: int = 4) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def display_frame(summary: Any) -> Any:
    """The summary as people read it: settings, then 'mean ± std' strings for the outcomes that matter."""
    import pandas as pd

    if summary.empty:
        return pd.DataFrame()
    out = pd.DataFrame(index=summary.index)
    for col in summary.columns:
        if "." in col:
            out[col.split(".", 1)[1]] = summary[col].astype(str)
    if "params" in summary:
        out["params"] = summary["params"].map(lambda p: "—" if p != p else f"{int(p):,}")
    out["runs"] = summary["finished"]
    for col, label in _display_columns(summary):
        std = summary.get(f"{col}_std")
        digits = 1 if col in ("best_epoch", "seconds_per_epoch") else 3
        out[label] = [
            mean_std(m, None if std is None else s, digits)
            for m, s in zip(summary[f"{col}_mean"], std if std is not None else summary.index, strict=True)
        ]
    out["outcomes"] = summary["outcomes"]
    return out


def _display_columns(summary: Any) -> list[tuple[str, str]]:
    wanted = [
        ("best_val_categorical_accuracy", "best val acc"),
        ("best_val_accuracy", "best val acc"),
        ("best_val_loss", "best val loss"),
        ("best_epoch", "best epoch"),
        ("test_accuracy", "test acc"),
        ("test_f1_macro", "test F1"),
        ("seconds_per_epoch", "s/epoch"),
    ]
    seen: set[str] = set()
    out = []
    for col, label in wanted:
        if f"{col}_mean" in summary and label not in seen:
            seen.add(label)
            out.append((col, label))
    return out


def summary_table(summary: Any, title: str, best_index: Any = None) -> Table:
    frame = display_frame(summary)
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col), justify="left" if frame[col].dtype == object else "right")
    for index, row in frame.iterrows():
        style = "bold green" if index == best_index else None
        table.add_row(*[str(v) for v in row], style=style)
    return table


def markdown(frame: Any) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def summary_text(summary: Any, fmt: str) -> str:
    """The summary as csv, md or json text."""
    if fmt == "csv":
        return str(summary.to_csv(index=False))
    if fmt == "md":
        return markdown(display_frame(summary))
    return str(summary.to_json(orient="records", indent=2)) + "\n"


def to_text(renderable: Any, width: int = 200) -> str:
    """A rich renderable as plain text, for --out files."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()
