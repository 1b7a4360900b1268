"""Bad input at the door: one line naming what is wrong and what is expected, exit 2, nothing left behind.

The spec-level corpus lives in test_spec.py; here the whole `hpcjobs submit` path is exercised with data
files, results folders and other sweeps, and nothing may be written or submitted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hpcjobs import backends
from hpcjobs.cli import cli
from hpcjobs.scheduler import BackendError

SWEEP = 'name = "bad"\n[data]\nsource = "{source}"\n[train]\nepochs = 1\n'


def _npz(**arrays: object) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        np.savez(folder / "d.npz", **arrays)  # type: ignore[arg-type]
        return "d.npz"

    return make


def _text(name: str, text: str, mode: int = 0o644) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        (folder / name).write_text(text)
        (folder / name).chmod(mode)
        return name

    return make


X = np.random.default_rng(0).normal(size=(8, 2))
DATA_CASES = {
    "missing file": (lambda folder: "nowhere.npz", "file not found"),
    "unknown extension": (_text("d.parquet", "x"), "d.parquet"),
    "npz without y": (_npz(x=X), "'x' and 'y'"),
    "x not 2-D": (_npz(x=np.zeros(8), y=np.arange(8) % 2), "shape"),
    "length mismatch": (_npz(x=X, y=np.arange(7) % 2), "7"),
    "NaN features": (_npz(x=np.where(np.eye(8, 2) > 0, np.nan, X), y=np.arange(8) % 2), "NaN"),
    "string labels": (_npz(x=X, y=np.array(["a", "b"] * 4)), "label"),
    "label -1": (_npz(x=X, y=np.array([0, 1, -1, 1, 0, 1, 0, 1])), "-1"),
    "gap in labels": (_npz(x=X, y=np.array([0, 1, 3, 1, 0, 1, 0, 3])), "2"),
    "non-integer labels": (_npz(x=X, y=np.array([0, 1.5] * 4)), "1.5"),
    "single class": (_npz(x=X, y=np.zeros(8, dtype=int)), "2 classes"),
    "empty csv": (_text("d.csv", ""), "empty"),
    "csv with text cells": (_text("d.csv", "1,2,0\n3,oops,1\n"), "d.csv"),
    "ragged csv": (_text("d.csv", "1,2,0\n3,1\n"), "d.csv"),
    "unreadable csv": (_text("d.csv", "1,2,0\n3,4,1\n", mode=0o000), "d.csv"),
}


def _submit(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["submit", *args])
    return result.exit_code, result.output


@pytest.fixture
def no_submission(monkeypatch: pytest.MonkeyPatch) -> backends.FakeBackend:
    """Route every executor to a fake that records submissions, so 'nothing submitted' can be asserted."""
    fake = backends.FakeBackend()
    monkeypatch.setattr(backends, "auto", lambda executor="auto": fake)
    return fake


@pytest.mark.parametrize("case", DATA_CASES, ids=list(DATA_CASES))
def test_bad_dataset_file(tmp_path: Path, case: str, no_submission: backends.FakeBackend) -> None:
    if case == "unreadable csv" and os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    make, expected = DATA_CASES[case]
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source=make(tmp_path)))
    results = tmp_path / "results"
    code, out = _submit([str(sweep), "--results", str(results)])
    assert code == 2, out
    assert out.count("\n") == 1 and out.startswith("hpcjobs: error: "), out
    assert expected in out
    assert not results.exists()
    assert no_submission.submitted == []


def test_results_folder_that_is_a_file(tmp_path: Path, no_submission: backends.FakeBackend) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="moons"))
    (tmp_path / "results").write_text("not a folder")
    code, out = _submit([str(sweep), "--results", str(tmp_path / "results")])
    assert (code, out.count("\n")) == (2, 1)
    assert "is a file: expected a folder" in out
    assert (tmp_path / "results").read_text() == "not a folder"
    assert no_submission.submitted == []


def test_sweep_folder_that_is_a_file(tmp_path: Path, no_submission: backends.FakeBackend) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="moons"))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bad").write_text("mine")
    code, out = _submit([str(sweep), "--results", str(tmp_path / "results")])
    assert (code, out.count("\n")) == (2, 1)
    assert "is a file: expected a results folder" in out
    assert no_submission.submitted == []


def test_folder_not_made_by_hpcjobs(tmp_path: Path, no_submission: backends.FakeBackend) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="moons"))
    other = tmp_path / "results" / "bad"
    other.mkdir(parents=True)
    (other / "notes.txt").write_text("someone else's")
    code, out = _submit([str(sweep), "--results", str(tmp_path / "results")])
    assert (code, out.count("\n")) == (2, 1)
    assert "was not made by hpcjobs" in out
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    assert no_submission.submitted == []


def test_folder_of_another_sweep(tmp_path: Path, no_submission: backends.FakeBackend) -> None:
    first = tmp_path / "first.toml"
    first.write_text(SWEEP.format(source="moons"))
    results = tmp_path / "results"
    assert _submit([str(first), "--results", str(results)])[0] == 0
    assert len(no_submission.submitted) == 1
    manifest_before = (results / "bad" / "manifest.json").read_text()
    second = tmp_path / "second.toml"
    second.write_text(SWEEP.format(source="digits"))
    code, out = _submit([str(second), "--results", str(results)])
    assert (code, out.count("\n")) == (2, 1)
    assert 'holds sweep \'bad\' with different settings (data.source "moons" -> "digits"): ' in out
    assert (results / "bad" / "manifest.json").read_text() == manifest_before
    assert len(no_submission.submitted) == 1


@pytest.mark.parametrize("version", [2, None])
def test_a_manifest_of_an_unknown_version_is_refused(
    tmp_path: Path, no_submission: backends.FakeBackend, version: int | None
) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="moons"))
    results = tmp_path / "results"
    assert _submit([str(sweep), "--results", str(results)])[0] == 0
    path = results / "bad" / "manifest.json"
    data = json.loads(path.read_text())
    data["version"] = version
    path.write_text(json.dumps(data))
    for command in (["status", "bad"], ["resubmit", "bad"], ["cancel", "bad"]):
        result = CliRunner().invoke(cli, [*command, "--results", str(results)])
        assert (result.exit_code, result.output.count("\n")) == (2, 1), result.output
        assert f"manifest version {version!r}: expected version 1" in result.output
    assert json.loads(path.read_text()) == data  # nothing rewritten
    assert len(no_submission.submitted) == 1


def test_folder_writable_by_others_is_refused(tmp_path: Path, no_submission: backends.FakeBackend) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="moons"))
    results = tmp_path / "results"
    assert _submit([str(sweep), "--results", str(results)])[0] == 0
    assert (results / "bad").stat().st_mode & 0o777 == 0o700
    (results / "bad").chmod(0o777)
    code, out = _submit([str(sweep), "--results", str(results)])
    assert (code, out.count("\n")) == (2, 1)
    assert "writable by other users" in out and "chmod go-w" in out
    resubmitted = CliRunner().invoke(cli, ["resubmit", "bad", "--results", str(results)])
    assert resubmitted.exit_code == 2 and "writable by other users" in resubmitted.output


def test_unreachable_scheduler_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = backends.FakeBackend(down=True)
    monkeypatch.setattr(backends, "auto", lambda executor="auto": fake)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="moons"))
    code, out = _submit([str(sweep), "--results", str(tmp_path / "results")])
    assert (code, out.count("\n")) == (1, 1)
    assert "Slurm is not reachable" in out
    assert not (tmp_path / "results" / "bad").exists()


def test_failed_submission_removes_the_new_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing(backends.FakeBackend):
        def submit(self, sweep, tasks, settings):  # type: ignore[no-untyped-def]
            raise BackendError("sbatch refused the sweep: Invalid partition name specified")

    monkeypatch.setattr(backends, "auto", lambda executor="auto": Refusing())
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="moons"))
    code, out = _submit([str(sweep), "--results", str(tmp_path / "results")])
    refusal = "hpcjobs: error: sbatch refused the sweep: Invalid partition name specified"
    assert (code, out.strip()) == (1, refusal)
    assert not (tmp_path / "results" / "bad").exists()


def test_keras_dataset_missing_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_submission: backends.FakeBackend
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="mnist"))
    code, out = _submit([str(sweep), "--results", str(tmp_path / "results")])
    assert (code, out.count("\n")) == (2, 1)
    assert "mnist is not in the Keras cache" in out and "hpcjobs fetch-data mnist" in out
    assert not (tmp_path / "results").exists()
    assert no_submission.submitted == []


def test_a_refused_submission_leaves_no_results_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Refusing(backends.FakeBackend):
        def submit(self, *args: object) -> list:  # type: ignore[override]
            raise BackendError("sbatch: error: invalid partition specified: nope")

    monkeypatch.setattr(backends, "auto", lambda executor="auto": Refusing())
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="moons"))
    code, out = _submit([str(sweep), "--results", str(tmp_path / "results")])
    assert (code, out) == (1, "hpcjobs: error: sbatch: error: invalid partition specified: nope\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.toml"]


def test_messages_name_the_sweep_file_the_key_and_what_was_meant(
    tmp_path: Path, no_submission: backends.FakeBackend
) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP.format(source="mnistt"))
    code, out = _submit([str(sweep), "--results", str(tmp_path / "r")])
    assert code == 2
    assert out.startswith(f'hpcjobs: error: {sweep}: data.source = "mnistt" is invalid: expected one of ')
    assert "(relative to the sweep file)" in out and out.endswith(" (did you mean 'mnist'?)\n")
    sweep.write_text(SWEEP.format(source="data/nope.csv"))
    code, out = _submit([str(sweep), "--results", str(tmp_path / "r")])
    assert code == 2
    assert out == (
        f"hpcjobs: error: {sweep}: data.source: {tmp_path / 'data' / 'nope.csv'}: file not found "
        "(a relative path is read from the sweep file's folder)\n"
    )
    sweep.write_text(SWEEP.format(source="moons") + '[sweep]\n"model.hidden" = [64, 32]\n')
    code, out = _submit([str(sweep), "--results", str(tmp_path / "r")])
    assert code == 2
    assert out.endswith(
        "each choice is a list of layers, so [64, 32] is written [[64, 32]] (one architecture) "
        "or [[64], [32]] (one layer each)\n"
    )
    assert not (tmp_path / "r").exists() and no_submission.submitted == []
