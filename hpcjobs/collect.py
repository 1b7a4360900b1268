"""Collection: every run's history and result -> one row per run -> one row per configuration.

Runs on login nodes: pandas yes, TensorFlow/Keras never. Histories are parsed with plain Python because
reading 10,000 small CSV files through pandas one at a time is dominated by per-call overhead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import layout, manifest
from .status import FINISHED, monitor_metric

RESULT_FIELDS = ("params", "seconds_per_epoch", "samples_per_second", "precision_policy", "device")


@dataclass(frozen=True)
class Collection:
    runs: pd.DataFrame  # one row per run
    epochs: pd.DataFrame  # long form: one row per run and epoch
    summary: pd.DataFrame  # one row per configuration
    problems: list[str]  # per-run reading problems; the rest of the summary still stands


def parse_history(text: str) -> tuple[list[str], list[list[float]]]:
    """CSVLogger text -> (columns, rows), one row per epoch: a resumed run's repeated epoch keeps the last."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return [], []
    columns = lines[0].split(",")
    if "epoch" not in columns:
        raise ValueError("no 'epoch' column in the header")
    by_epoch: dict[float, list[float]] = {}
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        if len(cells) != len(columns):
            raise ValueError(f"line {number} has {len(cells)} fields, the header {len(columns)}")
        row = [float(c) if c else float("nan") for c in cells]
        by_epoch[row[columns.index("epoch")]] = row
    return columns, [by_epoch[e] for e in sorted(by_epoch)]


def flatten(settings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{'model': {'hidden': [64, 32]}} -> {'model.hidden': '[64, 32]'} (lists as text so they group)."""
    return {
        f"{section}.{key}": json.dumps(value) if isinstance(value, list) else value
        for section, table in settings.items()
        for key, value in table.items()
    }


def run_row(
    meta: dict[str, Any], columns: list[str], rows: list[list[float]], result: dict[str, Any] | None
) -> dict[str, Any]:
    """One run's line of the runs table, from its history and its result (either may be missing)."""
    out: dict[str, Any] = {
        "run_id": meta["run_id"],
        "config_id": meta["config_id"],
        "seed": meta["seed"],
        "depth": len(meta["settings"]["model"]["hidden"]),
        **flatten(meta["settings"]),
    }
    out["status"] = (result or {}).get("status", "UNFINISHED")
    out["epochs_done"] = len(rows)
    metric = monitor_metric(dict.fromkeys(columns, 0.0))
    if rows and metric:
        table = dict(zip(columns, np.array(rows).T, strict=True))
        values = table[metric]
        best = (
            int(np.nanargmin(values) if metric == "val_loss" else np.nanargmax(values))
            if not np.all(np.isnan(values))
            else len(rows) - 1
        )
        out["monitor"] = metric
        out["best_epoch"] = best + 1
        out.update({f"best_{c}": float(table[c][best]) for c in columns if c.startswith("val_")})
    if rows and "loss" in columns:
        out["final_loss"] = float(rows[-1][columns.index("loss")])
    if result:
        out.update({k: result.get(k) for k in RESULT_FIELDS})
        out.update({f"test_{k}": v for k, v in (result.get("test") or {}).items()})
    return out


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: mean ± std over seeds of every numeric outcome, outcomes counted. Pure."""
    if runs.empty:
        return pd.DataFrame()
    settings = [c for c in runs.columns if "." in c and runs[c].astype(str).nunique() > 1]
    numeric = [
        c
        for c in runs.columns
        if c.startswith(("best_", "test_", "final_")) and pd.api.types.is_numeric_dtype(runs[c])
    ]
    rows = []
    for config_id, group in runs.groupby("config_id", sort=False):
        finished = group[group["status"].isin(FINISHED)]
        row: dict[str, Any] = {"config_id": config_id, **{c: group[c].iloc[0] for c in settings}}
        row["depth"] = int(group["depth"].iloc[0])
        if "params" in group and group["params"].notna().any():
            row["params"] = int(group["params"].dropna().iloc[0])
        row["finished"] = f"{len(finished)}/{len(group)}"
        row["outcomes"] = ", ".join(f"{n} {s}" for s, n in group["status"].value_counts().items())
        for col in numeric:
            values = finished[col].dropna()
            row[f"{col}_mean"] = values.mean() if len(values) else np.nan
            # One seed has no spread to report: NaN, not a reassuring 0.
            row[f"{col}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        for col in ("best_epoch", "seconds_per_epoch", "samples_per_second"):
            if col in finished:
                row[f"{col}_mean"] = pd.to_numeric(finished[col], errors="coerce").mean()
        rows.append(row)
    return pd.DataFrame(rows)


def best_config(summary: pd.DataFrame) -> Any:
    """Index of the configuration with the highest mean best validation accuracy (None without one)."""
    for col in ("best_val_categorical_accuracy_mean", "best_val_accuracy_mean"):
        if col in summary and summary[col].notna().any():
            return summary[col].idxmax()
    return None


def collect(sweep: layout.SweepDir) -> Collection:
    man = manifest.read(sweep)
    run_rows, epoch_frames, problems = [], [], []
    for meta in man.runs:
        run_id = meta["run_id"]
        columns: list[str] = []
        rows: list[list[float]] = []
        result = None
        try:
            columns, rows = parse_history(sweep.history(run_id).read_text())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            problems.append(f"{run_id}: history.csv unreadable ({exc})")
        try:
            result = layout.read_json(sweep.result(run_id))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            problems.append(f"{run_id}: result.json unreadable ({exc})")
        run_rows.append(run_row(meta, columns, rows, result))
        if rows:
            frame = pd.DataFrame(rows, columns=columns)
            frame.insert(0, "run_id", run_id)
            frame.insert(1, "config_id", meta["config_id"])
            epoch_frames.append(frame)
    runs = pd.DataFrame(run_rows)
    epochs = pd.concat(epoch_frames, ignore_index=True) if epoch_frames else pd.DataFrame()
    return Collection(runs, epochs, summarize(runs), problems)
