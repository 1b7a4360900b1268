"""What the commands of cli.py are made with: the options several share, library errors as one line and an
exit code, warnings, and output fitted to the terminal or written whole.

Library errors become one line on stderr: exit 2 for bad input, 1 for a scheduler that cannot be reached.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from . import layout, locks, render
from .scheduler import BackendError
from .vocab import InputError

F = TypeVar("F", bound=Callable[..., Any])


class OptionError(InputError, ValueError):
    """Options that do not go together; one line like every other input error."""


def _columns() -> int | None:
    """$COLUMNS where it is a width: a pipe has none of its own, and a user who sets it means it."""
    text = os.environ.get("COLUMNS", "")
    return int(text) if text.isdigit() and int(text) > 0 else None


# Piped output (files, CI logs, README transcripts) gets room for whole tables instead of 80 columns,
# unless COLUMNS says how wide.
out = Console(width=None if sys.stdout.isatty() else _columns() or 160)


def handle_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (BackendError, locks.Busy) as exc:
            click.echo(f"hpcjobs: error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:  # a full disk, a folder we may not write: which file, and why
            click.echo(f"hpcjobs: error: {_os_error(exc)}", err=True)
            sys.exit(1)
        except InputError as exc:
            click.echo(f"hpcjobs: error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _os_error(exc: OSError) -> str:
    return f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)


def warn(warning: str) -> None:
    if warning:
        click.echo(f"hpcjobs: warning: {warning}", err=True)


results_option = click.option(
    "--results",
    type=click.Path(path_type=Path),
    default=None,
    help="Results folder (default: $HPCJOBS_RESULTS, else ./results).",
)

# resubmit and promote go on where the sweep was last submitted unless told otherwise.
last_executor_option = click.option(
    "--executor",
    type=click.Choice(["slurm", "local"]),
    default=None,
    help="Default: the executor of the last submission.",
)

wide_option = click.option(
    "--wide", is_flag=True, help="Every column, whole, however wide (default: fit the terminal)."
)


def width(wide: bool) -> int | None:
    """The terminal's width, or $COLUMNS into a file or pipe; None (every column) with --wide or into a
    file or pipe without COLUMNS."""
    if wide:
        return None
    return out.width if out.is_terminal else _columns()


def show(renderable: Any, width: int | None, out_file: Path | None = None) -> None:
    """A table fitted to `width` columns; with None, whole, however long its lines (the terminal wraps).
    With `out_file`, its text goes there instead."""
    if out_file:
        layout.write_bytes(out_file, render.to_text(renderable).encode())
    elif not out.is_terminal:  # plain text, without the spaces that pad a table's cells
        click.echo(render.to_text(renderable, width or render.UNLIMITED), nl=False)
    else:
        (out if width is not None else Console(width=render.UNLIMITED)).print(renderable)


def check_out(fmt: str, out_file: Path | None, sweep: layout.SweepDir | None = None) -> None:
    """Before any work: a binary format is written to a file, parquet by pyarrow, and a file named for
    output is one to replace or a new path, in a folder that exists, and none that `sweep` keeps."""
    if fmt == "parquet" and not out_file:
        raise OptionError("--format parquet writes a binary file: expected --out FILE")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise OptionError("--format parquet needs pyarrow: pip install 'hpcjobs[parquet]'")
    if out_file:
        layout.check_output(out_file, sweep)


def emit(data: bytes, out_file: Path | None) -> None:
    """A file's bytes (csv, md, json, parquet) into `out_file`, or as text onto stdout."""
    if out_file:
        layout.write_bytes(out_file, data)
    else:
        click.echo(data.decode(), nl=False)
