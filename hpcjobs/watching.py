"""Watching a sweep until every run has ended and, for a halving search, until no promote job is left to
start its next rung: the polling policy, and what the watcher shows. In a terminal: progress bars, or a
status table redrawn within the screen; into a file or pipe: one plain line each time the counts or the
epochs done change (a log, and never 0 bytes while waiting). Between two rungs both say what they wait
for ("rung 1 of 4 ended: waiting for rung 2 ...")."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator

from rich.console import Console

from . import layout, render, status
from .scheduler import Backend
from .sweepstatus import SweepStatus
from .vocab import ACTIVE


def poll(
    sweep: layout.SweepDir, backend_for: Callable[[str], Backend], interval: float, max_interval: float
) -> Iterator[SweepStatus]:
    """Refresh until nothing more will happen (SweepStatus.done), backing off so the controller is never
    hammered, but at once when the runs' own files say they have all ended."""
    while True:
        st = status.gather(sweep, backend_for)
        yield st
        if st.done:
            return
        wait(sweep, [r.run_id for r in st.runs if r.state in ACTIVE], interval)
        interval = min(max_interval, interval * 1.5)


def wait(sweep: layout.SweepDir, active: list[str], seconds: float) -> None:
    """Sleep `seconds`, or less once every run in `active` has written its result: the back-off that
    spares the scheduler found a 27 s Slurm sweep done 15 s late (the next refresh of 5, 12.5, 23.75, 40.6 s).
    A second's check costs one stat while the first of the runs still trains. With no active run (a search
    waiting for its promote job) nothing on disk would tell, so it sleeps the whole time."""
    pending = deque(active)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        while pending and sweep.result(pending[0]).is_file():
            pending.popleft()
        if active and not pending:
            return


def log_lines(console: Console, statuses: Iterator[SweepStatus]) -> None:
    last = waiting = ""
    for st in statuses:
        line = render.progress_line(st)
        for text, before in ((line, last), (_waiting(st), waiting)):
            if text and text != before:
                console.file.write(f"{time.strftime('%H:%M:%S')} {text}\n")
                console.file.flush()
        last, waiting = line, _waiting(st)


def _waiting(st: SweepStatus) -> str:
    """What a watch waits for when every run has ended but a search goes on; '' otherwise."""
    return f"{st.name}: {st.search}" if st.search_waits else ""


def progress(console: Console, statuses: Iterator[SweepStatus]) -> None:
    """Bars of runs ended and epochs done, then the counts."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not console.is_terminal:
        return log_lines(console, statuses)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        runs = bar.add_task("runs finished", total=None)
        epochs = bar.add_task("epochs", total=None)
        waiting = ""
        for st in statuses:
            if _waiting(st) and _waiting(st) != waiting:
                bar.console.print(_waiting(st))
            waiting = _waiting(st)
            ended = sum(1 for r in st.runs if r.state not in ACTIVE)
            bar.update(runs, completed=ended, total=len(st.runs))
            bar.update(
                epochs, completed=sum(r.epochs_done for r in st.runs), total=sum(r.epochs for r in st.runs)
            )
    console.print(render.counts_line(st))


def table(console: Console, statuses: Iterator[SweepStatus], limit: int | None, wide: bool) -> None:
    """The status table redrawn in place, fitted to the terminal's width and height (unless wide)."""
    from rich.live import Live

    if not console.is_terminal:
        return log_lines(console, statuses)
    with Live(console=console, auto_refresh=False) as live:
        for st in statuses:
            width, height = (None, None) if wide else (console.width, console.size.height)
            live.update(render.status_table(st, limit, width, height), refresh=True)
