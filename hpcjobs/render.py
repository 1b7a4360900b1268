"""Formatting: status and summaries as rich Tables or text. Builds renderables; printing is the CLI's job."""

from __future__ import annotations

import io
import math
import textwrap
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from .status import SweepStatus
from .vocab import RunState

STATE_STYLE = {
    RunState.COMPLETED: "green",
    RunState.RUNNING: "cyan",
    RunState.PENDING: "yellow",
    RunState.SUBMITTED: "yellow",
    RunState.REQUEUED: "yellow",
    RunState.DIVERGED: "magenta",
    RunState.NOT_SUBMITTED: "dim",
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


def state_counts(st: SweepStatus) -> Text:
    text = Text()
    for state, n in st.counts.items():
        text.append(f"{state} {n}  ", style=_style(state))
    return text


def counts_line(st: SweepStatus) -> Text:
    return Text(f"{st.name}: {len(st.runs)} runs  ").append_text(state_counts(st))


def status_table(st: SweepStatus, limit: int | None = 50) -> Group:
    """Counts, then a row per run: at most `limit` rows, the runs that need a look first."""
    parts: list[Any] = [counts_line(st)]
    if st.warning:
        parts.append(Text(f"warning: {st.warning}", style="yellow"))
    runs, left = st.shown(limit)
    if runs:
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
        for r in runs:
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
    if left:
        hidden = ", ".join(f"{state} {n}" for state, n in left.items())
        parts.append(
            Text(
                f"… {sum(left.values())} more runs not listed ({hidden}): --all lists every run", style="dim"
            )
        )
    return Group(*parts)


def sweeps_table(statuses: list[SweepStatus]) -> Table:
    table = Table(title="sweeps")
    table.add_column("sweep")
    table.add_column("runs", justify="right")
    table.add_column("states")
    for st in statuses:
        table.add_row(st.name, str(len(st.runs)), state_counts(st))
    return table


# Measures shown as 'mean ± std': header, decimals, and whether the terminal table has room for it.
# Markdown shows them all and every best_val_* as 'best val <metric>'; csv, json and parquet carry every
# column of the summary.
MEASURES = {
    "best_epoch": ("best epoch", 1, True),
    "final_loss": ("final loss", 3, True),
    "test_accuracy": ("test acc", 3, True),
    "test_precision_macro": ("test precision", 3, False),
    "test_recall_macro": ("test recall", 3, False),
    "test_f1_macro": ("test F1", 3, True),
    "seconds_per_epoch": ("s/epoch", 3, True),
    "samples_per_second": ("samples/s", 0, True),
}
IN_TABLE = ("best_val_categorical_accuracy", "best_val_accuracy", "best_val_loss")  # of the best_val_*


def mean_std(mean: Any, std: Any, digits: int = 4) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:,.{digits}f}"
    return f"{mean:,.{digits}f} ± {std:,.{digits}f}"


def _measures(summary: Any, wide: bool = True) -> dict[str, tuple[str, int]]:
    """Measure stem -> (header, decimals) of the summary's shown measures, in display order."""
    means = [c for c in summary.columns if c.startswith("best_val_") and c.endswith("_mean")]
    stems = [c.removesuffix("_mean") for c in means]
    shown = {v: (f"best {short_metric(v.removeprefix('best_'))}", 3) for v in stems if wide or v in IN_TABLE}
    return shown | {
        stem: (header, digits)
        for stem, (header, digits, in_table) in MEASURES.items()
        if f"{stem}_mean" in summary and (wide or in_table)
    }


def summary_labels(summary: Any, wide: bool = True) -> dict[str, str]:
    """Summary column (or measure stem) -> the header people read, in display order."""
    labels = {c: c.split(".", 1)[1] for c in summary.columns if "." in c}
    labels |= {c: "runs" if c == "finished" else c for c in ("depth", "params", "finished") if c in summary}
    labels |= {stem: header for stem, (header, _) in _measures(summary, wide).items()}
    return labels | ({"outcomes": "outcomes"} if "outcomes" in summary else {})


def display_frame(summary: Any, wide: bool = True) -> Any:
    """The summary as people read it: settings, sizes, runs finished, 'mean ± std' text, outcomes.
    Not wide: only the measures the terminal has room for."""
    import pandas as pd

    out = pd.DataFrame(index=summary.index)
    measures = _measures(summary, wide)
    for column, header in summary_labels(summary, wide).items():
        if column in measures:
            std = summary[f"{column}_std"] if f"{column}_std" in summary else [None] * len(summary)
            digits = measures[column][1]
            means = summary[f"{column}_mean"]
            out[header] = [mean_std(m, s, digits) for m, s in zip(means, std, strict=True)]
        elif column == "params":
            out[header] = summary[column].map(lambda p: "—" if p != p else f"{int(p):,}")
        else:
            out[header] = summary[column].astype(str)
    return out


def _numeric_headers(summary: Any) -> set[str]:
    """Headers of columns holding numbers: right-aligned so digits line up."""
    import pandas as pd

    return {
        header
        for column, header in summary_labels(summary).items()
        if column not in summary or column == "finished" or pd.api.types.is_numeric_dtype(summary[column])
    }


def frame_table(frame: Any, title: str, right: set[str], highlight: Any = None) -> Table:
    """Any frame as a rich Table: `right` columns right-aligned, the row whose index is `highlight` bold.

    Headers wider than their cells wrap between words, so that numbers, not titles, set the table's width.
    No vertical rules: they would cost a character per column."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    rows = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(False)]
    for i, col in enumerate(frame.columns):
        widest = max((len(line) for row in rows for line in row[i].splitlines()), default=0)
        header = textwrap.fill(str(col), max([widest, *(len(word) for word in str(col).split())]))
        table.add_column(header, justify="right" if col in right else "left")
    for index, cells in zip(frame.index, rows, strict=True):
        table.add_row(*cells, style="bold green" if index == highlight else None)
    return table


def summary_table(summary: Any, title: str, best_index: Any = None) -> Table:
    """The terminal's summary: the std under its mean keeps columns narrow enough for a whole row."""
    frame = display_frame(summary, wide=False).map(lambda v: v.replace(" ± ", "\n± "))
    table = frame_table(frame, title, _numeric_headers(summary), best_index)
    table.caption = "mean ± std over finished seeds; best val: the value at the run's best epoch"
    return table


def epochs_table(epochs: Any, title: str) -> Table:
    import pandas as pd

    right = {c for c in epochs.columns if pd.api.types.is_numeric_dtype(epochs[c])}
    return frame_table(epochs, title, right)


def markdown(frame: Any) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def frame_bytes(frame: Any, fmt: str) -> bytes:
    """A frame as csv, md, json or parquet, numbers as they are: for files and other programs."""
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    if fmt == "csv":
        return str(frame.to_csv(index=False)).encode()
    if fmt == "md":
        return markdown(frame).encode()
    records = str(frame.to_json(orient="records", indent=2)) if len(frame) else "[]"
    return (records + "\n").encode()


def summary_bytes(summary: Any, fmt: str) -> bytes:
    """Markdown is read by people, so it gets the table's text; csv, json and parquet keep every number."""
    return frame_bytes(display_frame(summary) if fmt == "md" else summary, fmt)


def to_text(renderable: Any, width: int = 200) -> str:
    """A rich renderable as plain text, for --out files."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()
