"""Formatting: status and summaries as rich Tables or text. Builds renderables; printing is the CLI's job."""

from __future__ import annotations

import io
import json
import math
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from . import columns
from .labels import compact_value, measures, short_key, short_metric, short_run_label, summary_labels
from .packplan import Plan, rounded
from .sweepstatus import RunStatus, SweepStatus
from .vocab import RunState

STATE_STYLE = {
    RunState.COMPLETED: "green",
    RunState.RUNNING: "cyan",
    RunState.PENDING: "yellow",
    RunState.SUBMITTED: "yellow",
    RunState.REQUEUED: "yellow",
    RunState.DIVERGED: "magenta",
    RunState.PRUNED: "dim",
    RunState.NOT_SUBMITTED: "dim",
}


def _style(state: str) -> str:
    return STATE_STYLE.get(state, "red")


def state_counts(st: SweepStatus) -> Text:
    text = Text()
    for state, n in st.counts.items():
        text.append(f"{state} {n}  ", style=_style(state))
    return text


def counts_line(st: SweepStatus) -> Text:
    return Text(f"{st.name}: {plural(len(st.runs), 'run')}  ").append_text(state_counts(st))


def progress_line(st: SweepStatus) -> str:
    """One plain line for logs and pipes: the counts and the epochs done of all."""
    done, total = sum(r.epochs_done for r in st.runs), sum(r.epochs for r in st.runs)
    return f"{counts_line(st).plain.rstrip()}  epochs {done}/{total}"


def plural(n: int, noun: str, nouns: str = "") -> str:
    """1 run, 2 runs; 1 process, 2 processes."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def packing_plan(
    tasks: list[list[str]], parallel: int, executor: str, plan: Plan | None = None, where: str = ""
) -> str:
    """'24 runs as 6 array tasks × 2 processes × 2 runs': how submit packed the runs, and the plan's estimate
    after it where there is one. A Slurm task starts `parallel` processes (trials_per_gpu), each training its
    runs in turn; a local task is one process."""
    runs = sum(map(len, tasks))
    kind = "array task" if executor == "slurm" else f"{executor} task"
    text = f"{plural(runs, 'run')} as {plural(len(tasks), kind)}"
    if not tasks:
        return text
    processes = 1 if executor == "local" else min(parallel, len(tasks[0]))
    per_process = -(-len(tasks[0]) // processes)
    if processes > 1:
        text += f" × {plural(processes, 'process', 'processes')}"
    if per_process > 1:
        text += f" × {plural(per_process, 'run')}"
    if len(tasks) > 1 and len(tasks[-1]) != len(tasks[0]):
        text += f" (the last task {plural(len(tasks[-1]), 'run')})"
    return f"{text}; {estimate(plan, where)}" if plan else text


def estimate(plan: Plan, where: str) -> str:
    """'~50 s: start-up ~10 s a process, ~2.6 s a run; 2 GPUs in 'gpu'': the plan's estimate and its parts."""
    text = f"{rounded(plan.seconds)}: start-up ~{plan.startup_s:.0f} s a process, ~{plan.run_s:.1f} s a run"
    if plan.over_limit:
        text += " (longer than slurm.time allows: runs resume from their backups when requeued)"
    return f"{text}; {where}" if where else text


def took(estimate_s: float, took_s: float) -> str:
    """The packing's estimate beside what the sweep took, so that everyone can check the model."""
    # Short enough for 80 columns after a sweep's name: it goes to stderr, which no table fitting wraps.
    return (
        f"took {took_s:.0f} s (submit to end), estimated {rounded(estimate_s)}: "
        f"{took_s / max(estimate_s, 1e-9):.2f}× the estimate"
    )


def _fitted_table(fitted: columns.Fitted, highlight: int | None = None) -> Table:
    """A fitted layout as a borderless table: two spaces between columns, a rule under the headers."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for i, (col, width) in enumerate(zip(fitted.columns, fitted.widths, strict=True)):
        table.add_column(
            fitted.header(i),
            justify="right" if col.right else "left",
            width=width,
            no_wrap=True,
            overflow="ellipsis",
        )
    for row in range(len(fitted.columns[0].cells) if fitted.columns else 0):
        cells = [
            Text(c.cell(row, w), style=(c.styles[row] if c.styles else None) or "")
            for c, w in zip(fitted.columns, fitted.widths, strict=True)
        ]
        table.add_row(*cells, style="bold green" if row == highlight else None)
    return table


def _left_out(fitted: columns.Fitted) -> list[Text]:
    """What --wide would add: wrapped at spaces, never cut, so no column's name is lost."""
    return [Text(f"--wide adds: {', '.join(fitted.dropped)}", style="dim")] if fitted.dropped else []


def status_columns(runs: list[RunStatus], short: bool) -> list[columns.Column]:
    """The status table's columns; `short`: run labels from the varying settings instead of run ids."""
    metrics = {r.metric for r in runs if r.value is not None}
    one = len(metrics) == 1
    metric = short_metric(next(iter(metrics))) if one else "last val"
    values = [
        "" if r.value is None else f"{r.value:.4f}" if one else f"{short_metric(r.metric)} {r.value:.4f}"
        for r in runs
    ]
    labels = [short_run_label(r.run_id) if short else r.run_id for r in runs]
    Col = columns.Column
    shown = [
        Col("run", labels, priority=80, keep=True, min_width=16, cut_left=True),
        Col(
            "state", [r.state for r in runs], priority=100, keep=True, styles=[_style(r.state) for r in runs]
        ),
        Col("epochs", [f"{r.epochs_done}/{r.epochs}" for r in runs], right=True, priority=100, keep=True),
        Col("rung", [r.rung for r in runs], right=True, priority=60),
        Col(metric, values, right=True, priority=100, keep=True),
        Col("elapsed", [r.elapsed for r in runs], right=True, priority=20),
        Col("job", [r.job for r in runs], priority=10),
        Col("note", [r.note for r in runs], priority=30, min_width=12, styles=["dim"] * len(runs)),
    ]
    return [c for c in shown if c.keep or any(c.cells)]


def fit_status(runs: list[RunStatus], width: int | None) -> columns.Fitted:
    """Run ids where they fit, else short labels; then columns cut and left out by priority."""
    fitted = columns.fit(status_columns(runs, short=False), width, wrap_headers=False)
    if fitted.dropped or (width is not None and fitted.width > width) or _cut(fitted):
        return columns.fit(status_columns(runs, short=True), width, wrap_headers=False)
    return fitted


def _cut(fitted: columns.Fitted) -> bool:
    return any(w < c.natural for c, w in zip(fitted.columns, fitted.widths, strict=True))


def status_table(
    st: SweepStatus, limit: int | None = 50, width: int | None = None, height: int | None = None
) -> Group:
    """Counts, then a row per run: at most `limit` rows, the runs that need a look first; within `width`
    columns (None: every column whole) and `height` lines (None: as many as it takes)."""
    parts: list[Any] = [counts_line(st)]
    if st.search:
        parts.append(Text(f"search: {st.search}"))
    if st.warning:
        parts.append(Text(f"warning: {st.warning}", style="yellow"))
    # Lines besides the rows: the ones above, the header and its rule, two notes and the cursor's line.
    room = None if height is None else max(1, height - len(parts) - 5)
    runs, left = st.shown(limit if room is None else min(room, limit or room))
    notes: list[Text] = []
    wide: list[Text] = []
    if runs:
        fitted = fit_status(runs, width)
        parts.append(_fitted_table(fitted))
        wide = _left_out(fitted)
    if left:
        hidden = ", ".join(f"{state} {n}" for state, n in left.items())
        all_lists = limit is not None and (room is None or limit <= room)
        more = ": --all lists every run" if all_lists else ""
        notes.append(Text(f"… and {sum(left.values())} more ({hidden}){more}"))
    for text in (*parts, *notes):
        if isinstance(text, Text):
            text.no_wrap, text.overflow = True, "ellipsis"
    return Group(*parts, *notes, *wide)


def sweeps_table(statuses: list[SweepStatus]) -> Table:
    table = Table(title="sweeps")
    table.add_column("sweep")
    table.add_column("runs", justify="right")
    table.add_column("states")
    for st in statuses:
        table.add_row(st.name, str(len(st.runs)), state_counts(st))
    return table


def mean_std(mean: Any, std: Any, digits: int = 4) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:,.{digits}f}"
    return f"{mean:,.{digits}f} ± {std:,.{digits}f}"


def display_frame(summary: Any, wide: bool = True) -> Any:
    """The summary as people read it: settings, sizes, runs finished of all ('2/3'), 'mean ± std' text,
    outcomes. Not wide: only the measures the terminal has room for."""
    import pandas as pd

    out = pd.DataFrame(index=summary.index)
    shown = measures(summary, wide)
    for column, header in summary_labels(summary, wide).items():
        if column in shown:
            std = summary[f"{column}_std"] if f"{column}_std" in summary else [None] * len(summary)
            digits = shown[column][1]
            means = summary[f"{column}_mean"]
            out[header] = [mean_std(m, s, digits) for m, s in zip(means, std, strict=True)]
        elif column == "params":
            out[header] = summary[column].map(lambda p: "—" if pd.isna(p) else f"{int(p):,}")
        elif column == "runs_finished":
            out[header] = [f"{k}/{n}" for k, n in zip(summary[column], summary["runs_total"], strict=True)]
        else:
            out[header] = summary[column].astype(str)
    return out


def _numeric_headers(summary: Any) -> set[str]:
    """Headers of columns holding numbers: right-aligned so digits line up."""
    import pandas as pd

    return {
        header
        for column, header in summary_labels(summary).items()
        if column not in summary or pd.api.types.is_numeric_dtype(summary[column])
    }


# Which summary columns stay longest when the terminal is narrow (higher stays longer). Settings, runs
# finished and the main metric always stay; a search's rung would go in here too.
PRIORITY = {
    "rung": 75,  # a halving search's: the configurations that went furthest come first
    "best_val_loss": 70,
    "test_accuracy": 65,
    "test_f1_macro": 60,
    "best_epoch": 55,
    "outcomes": 50,
    "final_loss": 45,
    "params": 40,
    "seconds_per_epoch": 30,
    "startup_seconds": 25,
    "depth": 20,
    "samples_per_second": 10,
}


def _redundant(summary: Any, column: str) -> bool:
    """Columns the rest of the row already says: depth next to the layers, outcomes when all completed."""
    if column == "depth":
        return "model.hidden" in summary
    if column == "outcomes":
        totals = summary["runs_total"]
        return all(o == f"{n} COMPLETED" for o, n in zip(summary["outcomes"], totals, strict=True))
    return False


def summary_columns(summary: Any, main: str | None, wide: bool = False) -> list[columns.Column]:
    """The summary as table columns, 'mean±std' on one line; `main` (the monitored metric's column) and
    the settings always stay. Not wide: the measures people compare, without redundant columns."""
    frame = display_frame(summary, wide)
    numeric = _numeric_headers(summary)
    main_stem = (main or "").removesuffix("_mean")
    out = []
    for column, header in summary_labels(summary, wide).items():
        cells = [v.replace(" ± ", "±") for v in frame[header]]
        if "." in column:
            cells = [compact_value(v) for v in cells]
            right = header in numeric
            out.append(columns.Column(short_key(column), cells, right, priority=90, keep=True, min_width=8))
        elif wide or not _redundant(summary, column):
            keep = column in ("runs_finished", main_stem)
            priority = 100 if keep else PRIORITY.get(column, 5)
            out.append(columns.Column(header, cells, header in numeric, priority, keep))
    return out


def _titled(fitted: columns.Fitted, title: str, caption: str = "", best: int | None = None) -> Group:
    """Title, table, caption (lines cut, never wrapped) and what was left out (wrapped)."""
    texts = [Text(title, style="bold"), *([Text(caption, style="dim")] if caption else [])]
    for text in texts:
        text.no_wrap, text.overflow = True, "ellipsis"
    return Group(texts[0], _fitted_table(fitted, best), *texts[1:], *_left_out(fitted))


def summary_table(
    summary: Any, title: str, best_index: Any = None, main: str | None = None, width: int | None = None
) -> Group:
    """The terminal's summary within `width` columns (None: every measure, nothing left out)."""
    fitted = columns.fit(summary_columns(summary, main, wide=width is None), width)
    best = list(summary.index).index(best_index) if best_index in summary.index else None
    caption = "mean±std over finished seeds; best val: the value at the run's best epoch"
    return _titled(fitted, title, caption, best)


def epochs_table(epochs: Any, title: str, width: int | None = None) -> Group:
    """Every epoch of every run: the run and epoch stay; then the metrics, settings last."""
    import pandas as pd

    cols = []
    for i, name in enumerate(c for c in epochs.columns if c not in ("config_id", "seed")):
        values = epochs[name]
        if name == "run_id":
            labels = [short_run_label(str(v)) for v in values] if width is not None else values.astype(str)
            cols.append(
                columns.Column("run", list(labels), priority=100, keep=True, min_width=16, cut_left=True)
            )
            continue
        numeric = pd.api.types.is_numeric_dtype(values)
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in values]
        header = short_key(name) if "." in name else short_metric(name)
        keep = name == "epoch"
        priority = 100 if keep else 5 if "." in name else 50 - i
        cols.append(columns.Column(header, cells, numeric, priority, keep))
    fitted = columns.fit(cols, width)
    return _titled(fitted, title)


def markdown(frame: Any) -> str:
    """A pipe table; a '|' inside a cell is escaped, or it would start a new column."""
    cols = [_md_cell(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


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
    records = str(_with_lists(frame).to_json(orient="records", indent=2)) if len(frame) else "[]"
    return (records + "\n").encode()


def _with_lists(frame: Any) -> Any:
    """The settings collect holds as JSON text so that they group and compare ('[64, 32]'), as the lists
    they are: JSON has lists, csv has none and pandas cannot group parquet's."""
    listed = {}
    for column in (c for c in frame.columns if "." in c):
        texts = frame[column].dropna().unique()
        if len(texts) and all(isinstance(t, str) and t.startswith("[") for t in texts):
            listed[column] = frame[column].map({t: json.loads(t) for t in texts})
    return frame.assign(**listed)


def summary_bytes(summary: Any, fmt: str) -> bytes:
    """Markdown is read by people, so it gets the table's text; csv, json and parquet keep every number."""
    return frame_bytes(display_frame(summary) if fmt == "md" else summary, fmt)


UNLIMITED = 100_000  # a console width no table reaches: lines as long as their tables


def to_text(renderable: Any, width: int = UNLIMITED) -> str:
    """A rich renderable as plain text, for --out files."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    # Tables pad their cells to the column's width: files and pipes get no trailing spaces.
    return "".join(line.rstrip() + "\n" for line in console.export_text().splitlines())
