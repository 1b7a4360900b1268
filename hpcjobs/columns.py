"""Fitting a table's columns into a terminal's width: which columns stay, which are cut, which go.

Pure: columns in, widths out. render.py turns the result into rich Tables. A new column (a search rung,
say) is one more Column with its priority; nothing else here changes.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

GAP = 2  # spaces between columns


@dataclass(frozen=True)
class Column:
    """A table column as plain text, with what may happen to it when the terminal is narrow.

    priority: higher stays longer; columns are cut or dropped lowest first.
    keep: never dropped (state, epochs, the main metric).
    min_width: the column may be cut with '…' down to this width (run labels, notes); 0: never cut.
    cut_left: cut cells at their start instead of their end.
    """

    header: str
    cells: list[str]
    right: bool = False
    priority: int = 0
    keep: bool = False
    min_width: int = 0
    cut_left: bool = False
    styles: list[str | None] = field(default_factory=list)

    @property
    def cells_width(self) -> int:
        return max([0, *(len(line) for c in self.cells for line in c.splitlines())])

    @property
    def natural(self) -> int:
        """The width that shows the header and every cell whole, each on one line."""
        return max(len(self.header), self.cells_width)

    @property
    def wrapped(self) -> int:
        """The width that shows every cell whole, the header wrapped between its words."""
        return max([self.cells_width, *(len(word) for word in self.header.split())])

    def cell(self, row: int, width: int) -> str:
        """Row's cell cut to `width`: run labels lose their start, where the settings all runs share
        are, and keep the seed and the settings that tell them apart."""
        text = self.cells[row]
        if len(text) <= width or not self.cut_left:
            return text
        return "…" + text[len(text) - width + 1 :]


@dataclass(frozen=True)
class Fitted:
    columns: list[Column]  # in their original order
    widths: list[int]
    dropped: list[str]  # headers of the columns left out, most important first

    @property
    def width(self) -> int:
        return sum(self.widths) + GAP * max(0, len(self.widths) - 1)

    def header(self, i: int) -> str:
        """Column i's header, wrapped between its words where its column was cut."""
        return textwrap.fill(self.columns[i].header, max(1, self.widths[i]))


def total(widths: list[int]) -> int:
    return sum(widths) + GAP * max(0, len(widths) - 1)


def fit(columns: list[Column], width: int | None, wrap_headers: bool = True) -> Fitted:
    """Widths that fit `width` (None: no limit): headers wrap first (if they may: a header line is a
    row less for a table that must fit a screen); then, lowest priority first, a
    column is cut down to its
    min_width, and if that is not enough and it may go, left out. Columns that must stay are kept whole
    unless they may be cut, so the result can still be wider than `width` (too narrow a terminal)."""
    widths = {i: c.natural for i, c in enumerate(columns)}
    if wrap_headers and width is not None and total(list(widths.values())) > width:
        widths = {i: c.wrapped for i, c in enumerate(columns)}  # two-line headers before anything goes
    dropped: list[int] = []
    for i in sorted(widths, key=lambda i: columns[i].priority):
        excess = 0 if width is None else total(list(widths.values())) - width
        if excess <= 0:
            break
        col = columns[i]
        if col.min_width:
            cut = max(0, min(excess, widths[i] - col.min_width))
            widths[i] -= cut
            excess -= cut
        if excess > 0 and not col.keep:
            del widths[i]
            dropped.append(i)
    kept = sorted(widths)
    return Fitted(
        [columns[i] for i in kept],
        [widths[i] for i in kept],
        [columns[i].header for i in sorted(dropped, key=lambda i: -columns[i].priority)],
    )
