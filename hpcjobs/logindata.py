"""Data sources on a login node, before anything is submitted: a user's file checked as `data.load` checks
it but within the node's means, a built-in dataset's shape known without loading it, and a Keras dataset
downloaded into the cache (compute nodes have no internet).

Only numpy is imported at module level; Keras is imported inside `fetch`, the one function that needs it.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import kerascache
from .data import check_labels, check_path, check_shapes, finite, load
from .vocab import DataError

# (features, classes) of the built-in datasets, known without loading them (login nodes size models by it).
BUILTIN_SHAPES = {
    "moons": (2, 2),
    "digits": (64, 10),
    "mnist": (784, 10),
    "fashion_mnist": (784, 10),
    "mnist5k": (784, 10),
}

# A CSV is read whole, as float64: each number takes 2 characters at least ("0,"), 8 bytes once read,
# and numpy's parser holds about as much again while it reads.
CSV_EXPANSION = 8
CHUNK_BYTES = 64 * 2**20  # how much of a data file the login node holds at once while checking it


def fetch(name: str) -> Path:
    """Download mnist or fashion_mnist into the Keras cache (login nodes only: compute nodes are offline)."""
    if name not in kerascache.CACHED_FILES:
        raise DataError(
            f"Expected a dataset to download among {', '.join(kerascache.CACHED_FILES)}. Received: {name!r}"
        )
    try:
        import keras
    except ImportError as err:
        raise DataError(
            f"downloading {name} needs keras: install hpcjobs[tf] or hpcjobs[jax] ({err})"
        ) from err
    getattr(keras.datasets, name).load_data()
    missing = kerascache.missing(name)
    if missing:
        # Keras falls back to /tmp/.keras when the cache folder is not writable.
        raise DataError(
            f"keras downloaded {name}, but not into {kerascache.datasets_dir()}; missing: {missing[0]}"
        )
    return kerascache.datasets_dir() / Path(kerascache.CACHED_FILES[name][0]).parts[0]


def check_file(source: str) -> tuple[int, int]:
    """(features, classes) of a data file, checked as `load` checks it but within a login node's means: an
    .npz's x is streamed through in chunks of CHUNK_BYTES (a small archive can expand to gigabytes),
    never held whole. Other files are loaded."""
    path = Path(source)
    if path.is_absolute():
        check_path(path)  # before zipfile opens it: a FIFO would hang submit
    if path.suffix.lower() != ".npz" or not path.is_absolute() or not zipfile.is_zipfile(path):
        if path.suffix.lower() == ".csv" and path.is_absolute():
            _fits(path.stat().st_size * CSV_EXPANSION, "the CSV file read as numbers", source)
        x, y = load(source)
        return x.shape[1], check_labels(y, source)
    try:
        return _check_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path}: cannot read arrays 'x' and 'y' ({err})") from err


def memory_bytes() -> int:
    """What a check may hold at once on a login node, which others share: a quarter of its memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


Header = tuple[tuple[int, ...], bool, np.dtype[Any], int]  # shape, fortran order, dtype, data offset


def _header(archive: zipfile.ZipFile, member: str, where: str) -> Header:
    """(shape, fortran order, dtype, where its data starts) of one array of an archive, checked against
    the bytes the archive holds for it: a small file that declares a huge array (a zip bomb, a damaged
    header) is refused before anything is allocated for it. Object arrays are left to check_shapes."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(f)
        offset = f.tell()
    declared, what = _array(shape, dtype, member.removesuffix(".npy"))
    held = archive.getinfo(member).file_size - offset
    if declared != held and not dtype.hasobject:
        raise DataError(
            f"{where}: Expected {what} to hold {declared:,} bytes. "
            f"Received: {held:,} bytes in the archive (a damaged or forged header)"
        )
    return shape, fortran, dtype, offset


def _fits(need: int, what: str, where: str) -> None:
    """DataError unless what a login node reads whole (`need` bytes) fits the memory it may take."""
    most = memory_bytes()
    if need > most:
        raise DataError(
            f"{where}: Expected {what} to fit a quarter of this node's memory ({_size(most)}) "
            f"to check it. Received: {_size(need)}"
        )


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _array(shape: tuple[int, ...], dtype: np.dtype[Any], name: str) -> tuple[int, str]:
    """(bytes, how people read it) of an array as its header declares it."""
    return math.prod(shape) * dtype.itemsize, f"array '{name}' of shape {shape} ({dtype})"


def _check_npz(path: Path) -> tuple[int, int]:
    where = str(path)
    with zipfile.ZipFile(path) as archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        if "x" not in members or "y" not in members:
            found = ", ".join(sorted(members)) or "no arrays"
            raise DataError(f"{path}: Expected arrays 'x' and 'y'. Received: {found}")
        y_shape, _, y_dtype, _ = _header(archive, members["y"], where)
        shape, fortran, dtype, offset = _header(archive, members["x"], where)
        check_shapes(shape, dtype, y_shape, where)
        _fits(*_array(y_shape, y_dtype, "y"), where)
        with archive.open(members["y"]) as f:
            y = np.lib.format.read_array(f, allow_pickle=False)
        with archive.open(members["x"]) as f:
            if fortran:  # column-major: rows are not contiguous, so it cannot be streamed by rows
                _fits(*_array(shape, dtype, "x"), where)
                finite(np.lib.format.read_array(f, allow_pickle=False), where)
            else:
                f.seek(offset)
                _stream_finite(f, shape, dtype, where)
    return shape[1], check_labels(y, where)


def _stream_finite(f: IO[bytes], shape: tuple[int, ...], dtype: np.dtype[Any], where: str) -> None:
    row_bytes = shape[1] * dtype.itemsize
    rows_per_chunk = max(1, CHUNK_BYTES // row_bytes)
    for first in range(0, shape[0], rows_per_chunk):
        rows = min(rows_per_chunk, shape[0] - first)
        data = f.read(rows * row_bytes)
        if len(data) != rows * row_bytes:
            raise DataError(f"{where}: Expected {shape[0]} rows in x. Received: the file ends at row {first}")
        finite(np.frombuffer(data, dtype).reshape(rows, shape[1]), where, first)
