"""Where keras.datasets keeps the datasets it downloads (mnist, fashion_mnist), and their files read back
without Keras. What a missing or unreadable copy means for a data source is `data`'s to say.

Standard library and numpy only: login nodes check the cache at submit time.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

# File names exactly as keras.datasets caches them (keras/src/datasets/{mnist,fashion_mnist}.py),
# relative to the Keras cache's datasets/ folder.
_FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
CACHED_FILES: dict[str, tuple[str, ...]] = {
    "mnist": ("mnist.npz",),
    "fashion_mnist": tuple(f"fashion-mnist/{name}" for name in _FASHION_FILES),
}


def datasets_dir() -> Path:
    """Where keras.datasets caches downloads: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "datasets"


def missing(name: str) -> list[Path]:
    """The files of dataset `name` that are not in the cache."""
    paths = [datasets_dir() / f for f in CACHED_FILES[name]]
    return [p for p in paths if not p.is_file()]


def read(name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(images, labels) of the train and test parts as stored: uint8, images flat or 28×28; a damaged file
    raises what numpy, gzip or zipfile raise on it."""
    paths = [datasets_dir() / f for f in CACHED_FILES[name]]
    if name == "mnist":
        with np.load(paths[0], allow_pickle=False) as f:
            return [(f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])]
    return [
        (_idx_images(paths[1]), _idx_labels(paths[0])),
        (_idx_images(paths[3]), _idx_labels(paths[2])),
    ]


def _idx_labels(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=8)


def _idx_images(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=16)
