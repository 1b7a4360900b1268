"""History files: Keras CSVLogger text -> one array per distinct header, per-run figures, the long form.

history.csv numbers epochs as Keras does, from 0; what this module hands on numbers them from 1, like
result.json's best_epoch and diverged_epoch, so that a run's best epoch is the row of that number.

Reading 10,000 small CSV files through pandas one at a time is dominated by per-call overhead, so the
histories that share a header (in practice all of a sweep's) are joined and parsed by one `read_csv`; the
per-run figures are then array operations over segments. A file that does not fit is parsed on its own,
so its problem is pinned to its run and the rest still stand. The contract is history.parse_history's,
and it parses every file that does not fit.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .history import EPOCH_LIMIT, MISSING, parse_history
from .vocab import Objective


@dataclass(frozen=True)
class HistoryBlock:
    """The histories of runs that share one CSV header: one row per epoch, runs one after the other."""

    columns: list[str]
    run_ids: list[str]
    lengths: np.ndarray  # rows of each run (never 0: runs without epochs are left out)
    data: np.ndarray  # sum(lengths) × len(columns), each run's epochs ascending


def _split(data: bytes) -> tuple[bytes, bytes, int] | None:
    """(header, body ending in a newline, rows) of a file for the fast path; None: parse it on its own.

    Counting commas catches ragged and blank lines in C time, so one such file does not send all the
    others of its header to the slow path. A last line without its newline is still being written: dropped."""
    header, _, body = data.lstrip().partition(b"\n")
    header = header.rstrip()  # the csv module ends lines with \r\n
    body = body[: body.rfind(b"\n") + 1]
    rows = body.count(b"\n")
    if b"epoch" not in header.split(b",") or body.count(b",") != rows * header.count(b",") or b"\0" in data:
        return None
    return header, body, rows


def _block(columns: list[str], run_ids: list[str], lengths: list[int], data: np.ndarray) -> HistoryBlock:
    """Rows in file order -> a block. A resumed run repeats the epochs after its last backup: last wins."""
    run = np.repeat(np.arange(len(run_ids)), lengths)
    epoch = data[:, columns.index("epoch")]
    order = np.lexsort((epoch, run))  # stable: equal (run, epoch) rows keep file order
    run, epoch = run[order], epoch[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (run[1:] != run[:-1]) | (epoch[1:] != epoch[:-1])
    kept = order[last]
    return HistoryBlock(columns, run_ids, np.bincount(run[last], minlength=len(run_ids)), data[kept])


def _read_block(header: bytes, files: list[tuple[str, bytes, int]]) -> HistoryBlock | None:
    """One read_csv over the bodies of files sharing a header; None if a cell is not a number or an epoch
    is missing or not a whole number from 0, to be pinned to its file by parse_history."""
    text = b"".join(body for _, body, _ in files)
    if b"\r" in text:
        text = text.replace(b"\r", b"")
    rows = sum(n for _, _, n in files)
    try:
        columns = header.decode().split(",")
        frame = pd.read_csv(
            io.BytesIO(text), header=None, dtype=np.float64, na_values=list(MISSING), keep_default_na=False
        )
    except ValueError:  # pandas' parser errors and UnicodeDecodeError are ValueErrors
        return None
    data = frame.to_numpy()
    if data.shape != (rows, len(columns)):
        return None
    epoch = data[:, columns.index("epoch")]
    with np.errstate(invalid="ignore"):
        if not ((epoch >= 0) & (epoch < EPOCH_LIMIT) & (epoch == np.floor(epoch))).all():  # NaN fails too
            return None
    return _block(columns, [r for r, _, _ in files], [n for _, _, n in files], data)


def parse_histories(files: dict[str, bytes]) -> tuple[list[HistoryBlock], dict[str, str]]:
    """Run id -> history.csv bytes, to blocks by header and run id -> why its history could not be read.

    The files of one header are joined and parsed by one read_csv; files whose header lacks an epoch
    column, and every file of a group the joined parse rejects, are parsed one by one by parse_history.
    """
    groups: dict[bytes, list[tuple[str, bytes, int]]] = {}
    slow: list[str] = []
    for run_id, data in files.items():
        split = _split(data)
        if split is None:
            slow.append(run_id)
        elif split[2]:
            groups.setdefault(split[0], []).append((run_id, split[1], split[2]))
    blocks = []
    for header, group in groups.items():
        block = _read_block(header, group)
        if block is None:
            slow += [run_id for run_id, _, _ in group]
        else:
            blocks.append(block)

    problems: dict[str, str] = {}
    parsed: dict[str, list[tuple[str, list[list[float]]]]] = {}
    for run_id in slow:
        try:
            columns, rows = parse_history(files[run_id].decode())
        except ValueError as exc:
            problems[run_id] = str(exc)
            continue
        if rows:
            parsed.setdefault(",".join(columns), []).append((run_id, rows))
    for names, runs in parsed.items():
        array = np.array([row for _, rows in runs for row in rows], dtype=np.float64)
        blocks.append(_block(names.split(","), [r for r, _ in runs], [len(rows) for _, rows in runs], array))
    return blocks, problems


def history_stats(block: HistoryBlock) -> dict[str, dict[str, Any]]:
    """Run id -> epochs done, the objective, its best epoch (from 1) with every validation value there,
    and the final training loss. Vectorized over the block, choosing as Objective.best_epoch does: the
    first best value; a run whose objective is all NaN has no best epoch (None) and no best values."""
    lengths, data, columns = block.lengths, block.data, block.columns
    ends = np.cumsum(lengths)
    starts, last = ends - lengths, ends - 1
    stats: dict[str, list[Any]] = {"epochs_done": lengths.tolist()}
    objective = Objective.logged_in(columns)
    if objective:
        values = data[:, columns.index(objective.name)] * objective.sign
        valid = np.isfinite(values)  # inf is a broken metric, never a best
        filled = np.where(valid, values, -np.inf)
        hit = valid & (filled == np.repeat(np.maximum.reduceat(filled, starts), lengths))
        first_hit = np.minimum.reduceat(np.where(hit, np.arange(len(values)), len(values)), starts)
        found = first_hit < ends
        best = np.where(found, first_hit, last)
        stats["monitor"] = [objective.name] * len(lengths)
        epochs = data[best, columns.index("epoch")].astype(np.int64) + 1
        stats["best_epoch"] = [e if ok else None for e, ok in zip(epochs.tolist(), found, strict=True)]
        for c in columns:
            if c.startswith("val_"):
                stats[f"best_{c}"] = np.where(found, data[best, columns.index(c)], np.nan).tolist()
    if "loss" in columns:
        stats["final_loss"] = data[last, columns.index("loss")].tolist()
    return {run_id: {k: v[i] for k, v in stats.items()} for i, run_id in enumerate(block.run_ids)}


def epochs_table(blocks: list[HistoryBlock], metas: list[dict[str, Any]]) -> pd.DataFrame:
    """Long form for people's own pandas work: run_id, config_id, seed, epoch (from 1), then the logged
    metrics."""
    by_id = {m["run_id"]: m for m in metas}
    frames: list[pd.DataFrame] = []
    for block in blocks:
        run = np.repeat(np.arange(len(block.run_ids)), block.lengths)
        # Categoricals: 300,000 rows share 10,000 run ids; repeating the strings would cost seconds.
        frame = pd.DataFrame(
            {
                "run_id": pd.Categorical(block.run_ids).take(run),
                "config_id": pd.Categorical([by_id[r]["config_id"] for r in block.run_ids]).take(run),
                "seed": np.array([by_id[r]["seed"] for r in block.run_ids], dtype=np.int64)[run],
            }
        )
        frame["epoch"] = block.data[:, block.columns.index("epoch")].astype(np.int64) + 1
        metrics = [c for c in block.columns if c != "epoch"]
        frame[metrics] = block.data[:, [block.columns.index(c) for c in metrics]]
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["run_id", "config_id", "seed", "epoch"])
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
