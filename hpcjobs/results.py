"""A run's result.json, read and checked by shape: the one reader `status` and `collect` share.

A file of the wrong shape (a hand edit, another tool, a disk error) is reported once, naming the file, and
the run is read as if it had no result; the other runs still stand. Standard library only (login nodes).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from .layout import read_json
from .vocab import ORDER

_TEXT = ("run_id", "error", "hint", "traceback", "precision_policy", "backend", "device", "monitor")
_NUMBERS = ("params", "seconds_per_epoch", "samples_per_second", "startup_seconds", "epochs", "best_epoch")


def problem(data: Any) -> str:
    """What is wrong with a parsed result.json, '' if nothing. Pure."""
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    status = data.get("status")
    if status not in ORDER:
        return f"'status' is {status!r}: expected one of {', '.join(ORDER)}"
    for key in _TEXT:
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"'{key}' is {data[key]!r}: expected text"
    for key in _NUMBERS:
        if data.get(key) is not None and not _number(data[key]):
            return f"'{key}' is {data[key]!r}: expected a number"
    test = data.get("test")
    if test is not None and not (
        isinstance(test, dict) and all(v is None or _number(v) for v in test.values())
    ):
        return f"'test' is {test!r}: expected an object of numbers"
    for key in ("started", "finished"):
        if data.get(key) is not None:
            try:
                dt.datetime.fromisoformat(data[key])
            except (TypeError, ValueError):
                return f"'{key}' is {data[key]!r}: expected an ISO date and time"
    return ""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def recorded_status(path: Path) -> str | None:
    """The status a result.json records, None while there is none: what a worker asks before it trains a
    run, and submit before it sets a result aside. Lenient on purpose: any recorded status counts."""
    try:
        return str(read_json(path)["status"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(the result, '') if the file is there and sound; (None, '') if there is none yet; (None, what is
    wrong) if it cannot be used. Writes are atomic, so a half-written file is never seen."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as exc:
        return None, str(exc)
    why = problem(data)
    return (None, why) if why else (data, "")
