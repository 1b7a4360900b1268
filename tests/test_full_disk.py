"""A full disk: a small tmpfs as the results folder, filled up. Every command says which file it could not
write in one line, leaves the previous state readable, and `collect` still prints its table.

Needs permission to mount (root, outside a locked-down container); skipped with the reason otherwise.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hpcjobs import backends, layout, manifest, worker
from hpcjobs import sweep as sweeps
from hpcjobs.cli import cli

SWEEP = 'name = "full"\n[data]\nsource = "moons"\n[train]\nepochs = 2\n[sweep]\nseeds = [0, 1]\n'
HISTORY = "epoch,loss,val_categorical_accuracy,val_loss\n0,0.7,0.5,0.69\n1,0.6,0.75,0.6\n"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for this test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> None:
    """Write until the disk refuses another byte."""
    with (folder / "filler").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def failed_sweep(disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> layout.SweepDir:
    """Two runs on the tmpfs: one COMPLETED with a history, one FAILED; then the disk is full."""
    fake = backends.FakeBackend()
    monkeypatch.setattr(backends, "for_executor", lambda executor: fake)
    path = tmp_path / "full.toml"
    path.write_text(SWEEP)
    outcome = sweeps.submit(path, disk, fake, lambda executor: fake)
    done, failed = outcome.to_submit
    sweep = outcome.sweep
    layout.write_text(sweep.history(done), HISTORY)
    layout.write_json(sweep.result(done), {"run_id": done, "status": "COMPLETED", "params": 10})
    layout.write_json(sweep.result(failed), {"run_id": failed, "status": "FAILED", "error": "the original"})
    fill(disk)
    return sweep


def test_submit_into_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(
    disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = backends.FakeBackend()
    monkeypatch.setattr(backends, "auto", lambda executor="auto": fake)
    fill(disk)
    path = tmp_path / "full.toml"
    path.write_text(SWEEP)
    code, out, err = _cli("submit", str(path), "--results", str(disk))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"hpcjobs: error: {disk}/full/"), err
    assert err.rstrip().endswith("No space left on device")
    assert not (disk / "full").exists() and fake.submitted == []


def test_resubmit_on_a_full_disk_keeps_the_failed_results_and_leaves_no_job_behind(
    failed_sweep: layout.SweepDir,
) -> None:
    fake = backends.for_executor("fake")
    before = manifest.read(failed_sweep)
    first_submission = len(fake.submitted)
    code, out, err = _cli("resubmit", "full", "--results", str(failed_sweep.root.parent))
    assert (code, out) == (1, "")
    assert err.strip() == f"hpcjobs: error: {failed_sweep.manifest}: No space left on device"
    failed = before.run_ids[1]
    assert layout.read_json(failed_sweep.result(failed))["error"] == "the original"
    assert not failed_sweep.previous_result(failed).exists()
    assert manifest.read(failed_sweep) == before
    again = [s.job_id for s in fake.submitted[first_submission:]]
    assert len(again) == 1 and again == fake.cancelled  # submitted but not recorded: cancelled


def test_collect_on_a_full_disk_prints_its_table_and_says_the_summary_was_not_saved(
    failed_sweep: layout.SweepDir,
) -> None:
    code, out, err = _cli("collect", "full", "--results", str(failed_sweep.root.parent))
    assert code == 0
    assert "full: 1 of 1 configuration, 2 runs" in out and "1 COMPLETED, 1 FAILED" in out
    assert (
        err.strip()
        == f"hpcjobs: warning: summary not saved: {failed_sweep.summary_csv}: No space left on device"
    )
    assert not failed_sweep.summary_csv.exists()


def test_a_run_that_fails_on_a_full_disk_says_so(
    disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = backends.FakeBackend()
    path = tmp_path / "full.toml"
    path.write_text(SWEEP)
    sweep = sweeps.submit(path, disk, fake, lambda executor: fake).sweep
    run_id = manifest.read(sweep).run_ids[0]

    def train_run(sweep: layout.SweepDir, run_id: str, since: float) -> dict[str, Any]:
        fill(disk)  # the disk fills up while the run trains
        raise OSError(errno.ENOSPC, "No space left on device", str(sweep.history(run_id)))

    fake_train = types.ModuleType("hpcjobs.train")
    fake_train.train_run = train_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hpcjobs.train", fake_train)
    monkeypatch.setattr("hpcjobs.train", fake_train, raising=False)
    assert worker.run_one(sweep, run_id) == "FAILED"
    result = layout.read_json(sweep.result(run_id))
    assert "No space left on device" in result["error"] and str(sweep.history(run_id)) in result["error"]
    assert result["hint"].startswith(f"cannot write into {sweep.run_dir(run_id)} (No space left on device)")
    out = _cli("status", "full", "--results", str(disk))[1]
    assert "No space left on device" in out


def _local_backend(monkeypatch: pytest.MonkeyPatch, others: backends.Backend | None = None) -> None:
    """The local executor for `--executor local` (submitit writes its pickles), `others` for the rest."""
    local = backends.LocalBackend(max_parallel=1, gpus=[])
    monkeypatch.setattr(backends, "auto", lambda executor="auto": local)
    monkeypatch.setattr(backends, "for_executor", lambda executor: local if executor == "local" else others)


def test_submit_whose_pickles_fill_the_disk_names_the_pickle(
    disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep's files fit, submitit's pickle does not: it raised a bare `[Errno 28]` on close."""
    _local_backend(monkeypatch)
    write_new = sweeps._write_new
    monkeypatch.setattr(sweeps, "_write_new", lambda p, f: (write_new(p, f), fill(disk))[0])
    path = tmp_path / "full.toml"
    path.write_text(SWEEP)
    code, out, err = _cli("submit", str(path), "--results", str(disk), "--executor", "local")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith(f"hpcjobs: error: {disk}/full/submitit/"), err
    assert err.rstrip().endswith(".pkl: No space left on device")
    assert not (disk / "full").exists()


def test_resubmit_on_a_full_disk_names_the_pickle_and_leaves_none(
    failed_sweep: layout.SweepDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    _local_backend(monkeypatch, backends.for_executor("fake"))
    before = manifest.read(failed_sweep)
    root = str(failed_sweep.root.parent)
    code, out, err = _cli("resubmit", "full", "--results", root, "--executor", "local")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith(f"hpcjobs: error: {failed_sweep.submitit_dir}/"), err
    assert err.rstrip().endswith(".pkl: No space left on device")
    assert list(failed_sweep.submitit_dir.iterdir()) == []  # no empty pickle left behind
    assert manifest.read(failed_sweep) == before


def test_collect_plot_on_a_full_disk_prints_its_table_then_names_the_plot(
    failed_sweep: layout.SweepDir,
) -> None:
    code, out, err = _cli("collect", "full", "--results", str(failed_sweep.root.parent), "--plot")
    assert code == 1
    assert "full: 1 of 1 configuration, 2 runs" in out
    assert err.splitlines()[-1] == (
        f"hpcjobs: error: {failed_sweep.plot('learning_curves')}: No space left on device"
    )
    assert not failed_sweep.plots_dir.exists() or list(failed_sweep.plots_dir.iterdir()) == []
