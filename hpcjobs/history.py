"""One run's history.csv (Keras' CSVLogger): the one reader of its text, and the progress `status` shows.

Standard library only: `status` runs on login nodes, often. `histories.py` reads many files at once for
`collect` through pandas, with this module's contract (and this parser for any file that does not fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .layout import write_text

# Keras' CSVLogger writes NA for a metric missing from an epoch; an empty cell is the same.
MISSING = ("", "NA", "nan")
# Epochs are whole numbers from 0 (Keras'), below this: a larger one is a damaged or edited file.
EPOCH_LIMIT = 2**31


def parse_history(text: str) -> tuple[list[str], list[list[float]]]:
    """CSVLogger text -> (columns, rows) as written; ValueError naming the first line that does not fit.

    A last line without its newline is an epoch being written right now: left for the next read."""
    if "\0" in text:  # what a crash or a full disk leaves where a write was cut short
        raise ValueError("NUL bytes in the file: expected CSV text (a write was cut short)")
    complete, newline, _ = text.rpartition("\n")
    lines = [ln for ln in (complete + newline).splitlines() if ln.strip()]
    if not lines:
        return [], []
    columns = lines[0].split(",")
    if "epoch" not in columns:
        raise ValueError("no 'epoch' column in the header")
    epoch = columns.index("epoch")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        if len(cells) != len(columns):
            raise ValueError(f"line {number} has {len(cells)} fields, the header {len(columns)}")
        row = [float("nan") if c.strip() in MISSING else float(c) for c in cells]
        if not math.isfinite(row[epoch]):
            raise ValueError(f"line {number} has no epoch number")
        if not (row[epoch].is_integer() and 0 <= row[epoch] < EPOCH_LIMIT):
            raise ValueError(
                f"line {number} has epoch {cells[epoch].strip()}: expected a whole number from 0"
            )
        rows.append(row)
    return columns, rows


@dataclass(frozen=True)
class Progress:
    """What a run's history says so far: distinct epochs done and the last epoch's values."""

    epochs_done: int = 0
    last: dict[str, float] = field(default_factory=dict)


def count_problem(progress: Progress, epochs: int) -> str:
    """'' unless a history holds more distinct epochs than its run trains ('21/20'), else what. Pure."""
    if progress.epochs_done <= epochs:
        return ""
    return f"expected at most {epochs} epochs; received {progress.epochs_done} (a damaged or edited file)"


def progress(text: str) -> Progress:
    """History text -> progress; a resumed run may repeat an epoch, the last row wins. ValueError as
    parse_history."""
    columns, rows = parse_history(text)
    if not rows:
        return Progress()
    epoch = columns.index("epoch")
    by_epoch = {row[epoch]: row for row in rows}
    return Progress(len(by_epoch), dict(zip(columns, by_epoch[max(by_epoch)], strict=True)))


def rows_before(text: str, epochs: int) -> str:
    """History text -> its header and the complete rows of epochs before `epochs` (0-based, as Keras numbers
    them), each as written; '' if no row is left. Pure.

    A resume trains again from its checkpoint's epoch: rows of later epochs that an attempt wrote after its
    last checkpoint (killed, or failed writing the next) would otherwise be there twice. A line that is not
    a row of the header cannot be trusted and goes too."""
    complete, newline, _ = text.rpartition("\n")
    header, *lines = [ln for ln in (complete + newline).splitlines(keepends=True) if ln.strip()] or [""]
    kept = [line for line in lines if _epoch(header + line) < epochs]
    return "".join([header, *kept]) if kept else ""


def cut(path: Path, epochs: int) -> None:
    """Before a resume from epoch `epochs`: the history keeps the rows of the epochs before it alone (no file
    if none), rewritten atomically before Keras' CSVLogger or population.append_row appends to it."""
    if not path.is_file():
        return
    text = path.read_bytes().decode(errors="replace")
    kept = rows_before(text, epochs)
    if not kept:
        path.unlink()
    elif kept != text:
        write_text(path, kept)


def _epoch(text: str) -> float:
    """The epoch of a header and one line; infinity if the line is not a row of that header."""
    try:
        columns, rows = parse_history(text)
    except ValueError:
        return math.inf
    return rows[0][columns.index("epoch")]
