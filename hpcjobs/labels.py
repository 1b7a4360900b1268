"""The names people read: short metric names (val acc), short setting keys (lr), run labels, and the
headers of the summary's columns.

Pure and import-free: render.py shows these names, and collect.py accepts them back in --sort and --where,
so neither has to import the other.
"""

from __future__ import annotations

from typing import Any

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


# Short names of settings, for headers, run labels and --where/--sort (learning_rate -> lr). Settings whose
# values name themselves (64x32, relu, adam) are shown bare in run labels.
SHORT_KEYS = {
    "learning_rate": "lr",
    "batch_size": "batch",
    "early_stopping_patience": "patience",
    "steps_per_execution": "steps/exec",
    "test_fraction": "test frac",
    "validation_fraction": "val frac",
    "source": "data",
    "seed": "s",
}
BARE = ("hidden", "activation", "optimizer", "source", "precision")


def short_key(key: str) -> str:
    """model.learning_rate -> lr, model.hidden -> hidden."""
    field = key.rsplit(".", 1)[-1]
    return SHORT_KEYS.get(field, field)


def compact_value(text: str) -> str:
    """A setting as it reads in run ids: '[64, 32]' -> '64x32'."""
    if text.startswith("[") and text.endswith("]"):
        return "x".join(v.strip() for v in text[1:-1].split(","))
    return text


def short_run_label(run_id: str) -> str:
    """hidden-64x32__learning_rate-0.001__seed-0 -> '64x32 lr=0.001 s=0': the run's varying settings."""
    parts = []
    for part in run_id.split("__"):
        field, sep, value = part.partition("-")
        parts.append(value if field in BARE or not sep else f"{short_key(field)}={value}")
    return " ".join(parts)


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
    # Reading the data, building and compiling, up to the end of the first epoch (s/epoch and samples/s
    # count the later epochs only).
    "startup_seconds": ("start-up s", 1, True),
}
IN_TABLE = ("best_val_categorical_accuracy", "best_val_accuracy", "best_val_loss")  # of the best_val_*


def measures(summary: Any, wide: bool = True) -> dict[str, tuple[str, int]]:
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
    labels |= {
        c: "runs" if c == "runs_finished" else c
        for c in ("depth", "params", "rung", "runs_finished")
        if c in summary
    }
    labels |= {stem: header for stem, (header, _) in measures(summary, wide).items()}
    return labels | ({"outcomes": "outcomes"} if "outcomes" in summary else {})
