"""Collection: every run's history and result -> one row per run -> one row per configuration, and the
choice of configurations to show (--where, --sort, --top).

Runs on login nodes: pandas yes, TensorFlow/Keras never. Files are read in one pass and histories parsed
in bulk (histories.py): 10,000 runs take seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from . import layout, manifest, packing, search
from .histories import epochs_table, history_stats, parse_histories
from .labels import compact_value, short_key, summary_labels
from .results import read as read_result
from .vocab import FINISHED, ORDER, InputError, Objective, did_you_mean

RESULT_FIELDS = (
    "params",
    "seconds_per_epoch",
    "samples_per_second",
    "startup_seconds",
    "precision_policy",
    "device",
)
# Per-run outcomes summarized over seeds as mean and sample std: best_*, test_*, final_* and the two rates.
MEASURE_PREFIXES = ("best_", "test_", "final_")
RATES = ("seconds_per_epoch", "samples_per_second", "startup_seconds")
# Sorted smallest first: settings, sizes, spreads and anything whose name says it is a cost.
NO_EPOCHS = " without usable epochs"  # appended to COMPLETED / DIVERGED in the outcomes column
COSTS = ("loss", "error", "mse", "mae", "crossentropy", "seconds", "epoch")


class QueryError(InputError, ValueError):
    """A --where or --sort that names nothing in this sweep."""


@dataclass(frozen=True)
class Collection:
    runs: pd.DataFrame  # one row per run
    epochs: pd.DataFrame  # long form: one row per run and epoch
    summary: pd.DataFrame  # one row per configuration
    problems: list[str]  # per-run reading problems; the rest of the summary still stands
    took: tuple[float, float] | None = None  # packing's estimate and the seconds the sweep took, once ended


# --- runs and configurations ------------------------------------------------------------------------


def flatten(settings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{'model': {'hidden': [64, 32]}} -> {'model.hidden': '[64, 32]'} (lists as text so they group)."""
    return {
        f"{section}.{key}": json.dumps(value) if isinstance(value, list) else value
        for section, table in settings.items()
        for key, value in table.items()
    }


def run_row(
    meta: dict[str, Any], history: dict[str, Any] | None, result: dict[str, Any] | None
) -> dict[str, Any]:
    """One run's line of the runs table, from its history_stats and its result (either may be missing)."""
    out: dict[str, Any] = {
        "run_id": meta["run_id"],
        "config_id": meta["config_id"],
        "seed": meta["seed"],
        "depth": len(meta["settings"]["model"]["hidden"]),
        **flatten(meta["settings"]),
    }
    out["status"] = (result or {}).get("status", "UNFINISHED")
    if out["status"] in FINISHED and not usable(history):
        # Finished, but nothing to average (empty, header-only or all-NaN history): counted apart, so
        # "runs 2/2" never stands over a mean of one.
        out["status"] += NO_EPOCHS
    out.update(history or {"epochs_done": 0})
    if result:
        out.update({k: result.get(k) for k in RESULT_FIELDS})
        out.update({f"test_{k}": v for k, v in (result.get("test") or {}).items()})
    return out


def usable(history: dict[str, Any] | None) -> bool:
    """A history with epochs and, where it logged an objective, a best epoch (a finite value)."""
    if not history or not history.get("epochs_done"):
        return False
    return "monitor" not in history or history.get("best_epoch") is not None


def _outcome_order(state: str) -> tuple[int, str]:
    """Outcomes listed in status order (COMPLETED, DIVERGED, failures), others after, alphabetically."""
    return (ORDER.index(state) if state in ORDER else len(ORDER), state)


def shown_settings(runs: pd.DataFrame) -> list[str]:
    """The settings that tell configurations apart, and the architecture always: the lesson's question."""
    return [
        c for c in runs.columns if "." in c and (c == "model.hidden" or runs[c].nunique(dropna=False) > 1)
    ]


def with_settings(epochs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The epochs table with each run's shown settings after its seed, so it can be grouped on its own."""
    by_run = runs.set_index("run_id")
    at = list(epochs.columns).index("seed") + 1
    for offset, column in enumerate(shown_settings(runs)):
        epochs.insert(at + offset, column, epochs["run_id"].map(by_run[column]).astype(by_run[column].dtype))
    return epochs


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration, in run order: the settings that vary, depth, params, runs finished and
    runs in all (numbers: render.py writes them '2/3'), outcomes counted, and mean and sample std over
    finished seeds of every measure (best_*, test_*, final_*, seconds_per_epoch, samples_per_second) as
    <measure>_mean, <measure>_std. Pure."""
    if runs.empty:
        return pd.DataFrame()
    settings = shown_settings(runs)
    groups = runs.groupby("config_id", sort=False)
    out = groups[[*settings, "depth"]].first()
    if "params" in runs:
        out["params"] = groups["params"].first()  # first that is not missing
    if "rung" in runs:
        out["rung"] = groups["rung"].max()
    finished = runs["status"].isin(list(FINISHED))
    out["runs_finished"] = finished.groupby(runs["config_id"], sort=False).sum()
    out["runs_total"] = groups.size()
    outcomes: dict[str, list[tuple[str, int]]] = {}
    for (config_id, state), n in runs.groupby(["config_id", "status"], sort=False).size().items():
        outcomes.setdefault(config_id, []).append((state, n))
    out["outcomes"] = [
        ", ".join(f"{n} {s}" for s, n in sorted(outcomes[c], key=lambda sn: _outcome_order(sn[0])))
        for c in out.index
    ]
    measures = [
        c
        for c in runs.columns
        if (c.startswith(MEASURE_PREFIXES) or c in RATES) and pd.api.types.is_numeric_dtype(runs[c])
    ]
    if measures:
        # One seed has no spread to report: std is NaN then (pandas' ddof=1), not a reassuring 0.
        stats = runs[finished].groupby("config_id", sort=False)[measures].agg(["mean", "std"])
        out = out.join(stats.set_axis([f"{c}_{s}" for c, s in stats.columns], axis=1))
    return out.reset_index()


# --- choosing what to show --------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    where: tuple[str, ...] = ()  # KEY=VALUE conditions on settings, all of which must hold
    sort: str | None = None  # a summary column, a measure (test_f1_macro) or a header ('test F1')
    ascending: bool | None = None  # None: ascending_by_default(column)
    top: int | None = None  # keep the first N rows; without sort, ranked by the monitored metric


def where_keys(runs: pd.DataFrame) -> list[str]:
    return [*sorted(c for c in runs.columns if "." in c), "depth"]


def _aliases(column: str, header: str) -> set[str]:
    """Every name a column answers to: model.learning_rate, learning_rate, lr, 'learning rate';
    best_val_loss_mean, best_val_loss, val_loss, 'best val loss'."""
    stem = column.removesuffix("_mean")
    names = {column, stem, stem.removeprefix("best_"), header}
    if "." in column:
        field = column.split(".", 1)[1]
        names |= {field, field.replace("_", " "), short_key(column)}
    return names


def find_column(name: str, labels: dict[str, str], what: str) -> str:
    """The column `name` means, by any of its names (one vocabulary for --where and --sort), in any case.
    QueryError says `what` was asked, the closest key and the valid ones."""
    wanted = name.strip().lower()
    for column, header in labels.items():
        if wanted in {n.lower() for n in _aliases(column, header)}:
            return column
    hint = did_you_mean(name.strip(), [n for c, h in labels.items() for n in _aliases(c, h)])
    shown = []
    for column, header in labels.items():
        if column.endswith("_std"):
            continue  # valid, but the list would double: each measure has one
        stem = column.removesuffix("_mean")
        shown.append(stem if header in (stem, column) else f"{stem} ('{header}')")
    raise QueryError(f"{what}: unknown key '{name.strip()}'{hint}; valid keys: {', '.join(shown)}")


def _equals(column: pd.Series, raw: str) -> pd.Series:
    """Settings equal to VALUE read as JSON (a bare word is a string; lists as flatten() holds them), or
    written as the table shows them (64x32 for [64, 32])."""
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    except RecursionError:  # a list nested thousands deep: no setting looks like that
        raise QueryError("--where value is nested too deeply: expected a number, a word or a list") from None
    if isinstance(value, dict) or value is None:
        raise QueryError(f"--where value {raw[:80]!r}: expected a number, a word or a list such as [64,32]")
    shown = column.astype(str).map(compact_value) == raw  # as the table shows it: hidden=64x32
    if isinstance(value, list):
        return (column == json.dumps(value)) | shown
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (pd.to_numeric(column, errors="coerce") == value) | shown
    return (column == value) | shown


def _conditions(runs: pd.DataFrame, where: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(condition, column, value) per KEY=VALUE; QueryError names the valid keys."""
    labels = {key: short_key(key) for key in where_keys(runs)}
    out = []
    for condition in where:
        key, sep, raw = condition.partition("=")
        if not sep:
            raise QueryError(f"--where '{condition}': expected KEY=VALUE such as hidden=[64,32] or lr=0.003")
        out.append((condition, find_column(key, labels, f"--where '{condition}'"), raw.strip()))
    return out


def where_mask(runs: pd.DataFrame, where: tuple[str, ...]) -> pd.Series:
    """Runs whose settings meet every KEY=VALUE condition. Pure; QueryError names the valid keys."""
    mask = pd.Series(True, index=runs.index)
    for _, column, raw in _conditions(runs, where):
        mask &= _equals(runs[column], raw)
    return mask


def no_match(runs: pd.DataFrame, where: tuple[str, ...]) -> str:
    """Why no run meets the conditions, for people: the values each condition matching nothing could
    take, as the table shows them. Pure."""
    why = []
    for condition, column, raw in _conditions(runs, where):
        if not _equals(runs[column], raw).any():
            values = dict.fromkeys(compact_value(str(v)) for v in runs[column])
            why.append(f"{condition.partition('=')[0].strip()} is one of {', '.join(values)}")
    return "; ".join(why) or "each condition matches some runs, but no run all of them"


def sort_column(summary: pd.DataFrame, name: str) -> str:
    """A summary column from what people type: the column, its measure without _mean (best_ may be left
    out too: val_loss), its table header ('test f1'), a setting's short name (lr)."""
    # A setting by the short name its header shows (lr), as --where lists it.
    labels = {
        c if c in summary else f"{c}_mean": short_key(c) if "." in c else h
        for c, h in summary_labels(summary).items()
    }
    labels |= {c: c for c in summary.columns if c not in labels}
    return find_column(name, labels, f"--sort '{name}'")


def ascending_by_default(column: str) -> bool:
    """Smallest first for settings, sizes, spreads and costs (loss, errors, seconds, epochs); largest first
    for scores and throughput (accuracy, precision, recall, F1, samples/s)."""
    return (
        "." in column
        or column in ("config_id", "depth", "params")
        or column.endswith("_std")
        or any(cost in column for cost in COSTS)
    )


def objective_column(summary: pd.DataFrame) -> tuple[Objective, str] | None:
    """The objective and its summary column (the mean of its value at each run's best epoch), where any
    configuration has one."""
    means = {c.removeprefix("best_").removesuffix("_mean"): c for c in summary.columns if c.endswith("_mean")}
    objective = Objective.logged_in(m for m in means if m.startswith("val_"))
    if objective is None or not summary[means[objective.name]].notna().any():
        return None
    return objective, means[objective.name]


def rank_column(summary: pd.DataFrame) -> str | None:
    """The objective's summary column (None without one)."""
    found = objective_column(summary)
    return found[1] if found else None


def best_config(summary: pd.DataFrame) -> Any:
    """Index of the configuration best on the objective (None without one); in a halving search, among
    those that reached its highest rung (trained longest, compared on equal terms)."""
    found = objective_column(summary)
    if found is None:
        return None
    objective, col = found
    if "rung" in summary:
        scored = summary[summary[col].notna()]  # the runs of a rung in flight have no value yet
        summary = scored[scored["rung"] == scored["rung"].max()]
    return summary[col].idxmax() if objective.direction == "max" else summary[col].idxmin()


def by_rung(summary: pd.DataFrame) -> pd.DataFrame:
    """A halving search's summary: the highest rung reached first, then the objective, best first. Pure."""
    found = objective_column(summary)
    keys, ascending = ["rung"], [False]
    if found is not None:
        keys.append(found[1])
        ascending.append(found[0].direction == "min")
    return summary.sort_values(keys, ascending=ascending, kind="stable", na_position="last").reset_index(
        drop=True
    )


def rank(summary: pd.DataFrame, query: Query) -> pd.DataFrame:
    """Sorted by query.sort (stable, missing values last), then the first query.top rows. Pure."""
    column = sort_column(summary, query.sort) if query.sort else None
    if column is None and query.top is not None:
        column = rank_column(summary)
    if column is not None:
        ascending = ascending_by_default(column) if query.ascending is None else query.ascending
        summary = summary.sort_values(column, ascending=ascending, kind="stable", na_position="last")
    return summary if query.top is None else summary.head(query.top)


def select(col: Collection, query: Query) -> Collection:
    """The configurations a query asks for, in its order; their runs and epochs come along."""
    if col.runs.empty or query == Query():
        return col
    chosen = col.runs.loc[where_mask(col.runs, query.where), "config_id"]
    summary = rank(col.summary[col.summary["config_id"].isin(chosen)], query)
    runs = col.runs[col.runs["config_id"].isin(summary["config_id"])]
    epochs = col.epochs[col.epochs["config_id"].isin(summary["config_id"])]
    return Collection(runs, epochs, summary, col.problems, col.took)


# --- the sweep folder -------------------------------------------------------------------------------


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Reading 10,000 results makes millions of objects that all stay alive: the cyclic garbage collector
    would scan them again and again for nothing (a fifth of collect's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_run_files(
    sweep: layout.SweepDir, run_ids: list[str]
) -> tuple[dict[str, bytes], dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
    """History bytes and parsed results of the runs that have them, and (run id, file) -> why unreadable."""
    histories: dict[str, bytes] = {}
    results: dict[str, dict[str, Any]] = {}
    problems: dict[tuple[str, str], str] = {}
    for run_id in run_ids:
        try:
            histories[run_id] = layout.read_bytes(sweep.history(run_id))
        except FileNotFoundError:
            pass
        except OSError as exc:
            problems[run_id, "history.csv"] = str(exc)
        result, why = read_result(sweep.result(run_id))
        if result is not None:
            results[run_id] = result
        elif why:
            problems[run_id, "result.json"] = why
    return histories, results, problems


def collect(sweep: layout.SweepDir) -> Collection:
    man = manifest.read(sweep)
    with _gc_paused():
        histories, results, problems = _read_run_files(sweep, man.run_ids)
        blocks, unreadable = parse_histories(histories)
        problems |= {(run_id, "history.csv"): why for run_id, why in unreadable.items()}
        stats = {run_id: s for block in blocks for run_id, s in history_stats(block).items()}
        metas = [m.to_dict() for m in man.runs]  # a table's columns come from the manifest's own rows
        rows = [run_row(m, stats.get(m["run_id"]), results.get(m["run_id"])) for m in metas]
        runs = pd.DataFrame(rows)
        plan = search.read(sweep)
        if plan is not None and len(runs):
            rung_of = plan.rung_of()
            runs["rung"] = [rung_of.get(r, -1) + 1 for r in runs["run_id"]]
        epochs = epochs_table(blocks, metas)
    ordered = [
        f"{run_id}: {name} unreadable ({problems[run_id, name]})"
        for run_id in man.run_ids
        for name in ("history.csv", "result.json")
        if (run_id, name) in problems
    ]
    ordered += [  # counted apart in the outcomes column; said here too, as it changes "runs 2/2" to 1/2
        f"{r['run_id']}: {r['status']} in history.csv: left out of the means"
        for r in rows
        if r["status"].endswith(NO_EPOCHS) and (r["run_id"], "history.csv") not in problems
    ]
    ordered += [p for p in [manifest.left_out(sweep, man)] if p]
    summary = summarize(runs)
    if "rung" in summary:
        summary = by_rung(summary)
    later = [r.estimate_s for r in plan.rungs[1:]] if plan else []
    took = packing.estimate_and_took(
        man, [(results.get(r) or {}).get("finished") for r in man.run_ids], later
    )
    return Collection(runs, with_settings(epochs, runs) if len(runs) else epochs, summary, ordered, took)


def report(sweep: layout.SweepDir, query: Query) -> tuple[Collection, Collection]:
    """Every run collected, the full summary saved to the sweep's summary.csv, and what `query` chooses. A
    summary that cannot be saved is one more problem: the tables are still worth showing."""
    full = collect(sweep)
    try:
        layout.write_text(sweep.summary_csv, full.summary.to_csv(index=False))
    except OSError as exc:  # layout's write names the file
        full = replace(full, problems=[f"summary not saved: {exc.filename}: {exc.strerror}", *full.problems])
    return full, select(full, query)
