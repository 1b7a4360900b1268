"""What would fail on every node is refused at submit, with the figure: a model too large for mem_gb, a
seed beyond 32 bits, a time limit shorter than the checkpoint signal's lead; data files are checked by
streaming, never loaded whole on the login node; a CSV field over the csv module's limit is one line."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hpcjobs import data, logindata
from hpcjobs.cli import cli
from hpcjobs.vocab import DataError


def submit(tmp_path: Path, toml: str) -> tuple[int, str, str]:
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\n' + toml)
    result = CliRunner().invoke(cli, ["submit", str(path), "--dry-run", "--results", str(tmp_path / "r")])
    return result.exit_code, result.stdout, result.stderr


MOONS = '[data]\nsource = "moons"\n'


def test_a_model_too_large_for_mem_gb_is_refused_with_the_figure(tmp_path: Path) -> None:
    code, out, err = submit(tmp_path, MOONS + "[model]\nhidden = [100000000]\n")
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"hpcjobs: error: {tmp_path / 's.toml'}: model.hidden [100000000] with train.batch_size 128 needs at "
        "least 1533.3 GiB, more than slurm.mem_gb = 8: expected smaller layers or more memory"
    )
    assert not (tmp_path / "r").exists()


def test_a_large_model_that_fits_is_accepted(tmp_path: Path) -> None:
    code, _, err = submit(tmp_path, MOONS + "[model]\nhidden = [100000]\n[slurm]\nmem_gb = 8\n")
    assert code == 0, err


@pytest.mark.parametrize(("seed", "ok"), [(2**32 - 1, True), (2**32, False)])
def test_seeds_are_32_bit(tmp_path: Path, seed: int, ok: bool) -> None:
    code, _, err = submit(tmp_path, MOONS + f"[sweep]\nseeds = [{seed}]\n")
    assert (code == 0) is ok, err
    if not ok:
        assert "expected a non-empty list of integers 0 ≤ seed < 2**32" in err


@pytest.mark.parametrize(("time", "ok"), [("00:01:00", False), ("4", False), ("00:05:00", True), ("0", True)])
def test_a_time_limit_shorter_than_the_checkpoint_signal_is_refused(
    tmp_path: Path, time: str, ok: bool
) -> None:
    code, _, err = submit(tmp_path, MOONS + f'[slurm]\ntime = "{time}"\n')
    assert (code == 0) is ok, err
    if not ok:
        assert err.count("\n") == 1
        assert "is shorter than 5 minutes: the checkpoint signal comes 120 s before the end" in err


def test_an_npz_is_checked_in_chunks_never_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """64 MiB of features compressed to a small archive: the check holds about one chunk at a time."""
    monkeypatch.setattr(logindata, "CHUNK_BYTES", 2**20)
    rows = 2**20
    x = np.zeros((rows, 16), dtype=np.float32)
    x[rows - 3, 5] = np.nan
    y = np.arange(rows) % 2
    path = tmp_path / "big.npz"
    np.savez_compressed(path, x=x, y=y)
    del x
    assert path.stat().st_size < 2**21
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as err:
            logindata.check_file(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(err.value) == (
        f"{path}: Expected finite features (float32). Received: NaN or inf in 1 row (first: row {rows - 3})"
    )
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB while checking 64 MiB of features"


def test_a_streamed_npz_gives_what_loading_it_gives(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x=rng.normal(size=(100, 3)), y=np.arange(100) % 4)
    x, y = data.load(str(path))
    assert logindata.check_file(str(path)) == (x.shape[1], data.check_labels(y, str(path))) == (3, 4)


def test_a_csv_field_over_the_csv_limit_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a" * 200_000 + ",1\n1,0\n")
    code, out, err = submit(tmp_path, '[data]\nsource = "d.csv"\n')
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "field larger than field limit" in err, err
