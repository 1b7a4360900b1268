"""Files that hpcjobs reads but did not write as it expects (issue 22): FIFOs and devices in a file's place,
archives that declare more than they hold, damaged manifests and histories, and --out onto the sweep's own
files. Each is one line naming the file, never a hang, a traceback or a silent number."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from hpcjobs import collect, history, layout, logindata, manifest, status
from hpcjobs.backends import FakeBackend
from hpcjobs.cli import cli
from hpcjobs.histories import parse_histories
from hpcjobs.spec import expand, load_spec
from hpcjobs.vocab import DataError, Submission

from .conftest import EXAMPLES, PACKED

HEADER = "epoch,loss,val_categorical_accuracy,val_loss\n"
HISTORY = HEADER + "0,0.9,0.6,0.8\n1,0.5,0.7,0.4\n"
# A command that would block on a FIFO is killed after this long: the test then fails, never hangs.
TIMEOUT_S = 30


def _moons(results: Path, executor: str = "fake", job_id: str = "1000") -> tuple[layout.SweepDir, list[str]]:
    """The moons example (3 configurations × 2 seeds) submitted as one job, every run COMPLETED."""
    runs = expand(load_spec(EXAMPLES / "moons.toml"))
    ids = [r.run_id for r in runs]
    sweep = layout.SweepDir(results / "moons")
    layout.make_private_dir(sweep.root)
    man = manifest.Manifest.new("moons", "tensorflow", runs, PACKED)
    man.submissions.append(Submission(executor, job_id, [[i] for i in ids]))
    manifest.write(sweep, man)
    for run_id in ids:
        layout.write_text(sweep.history(run_id), HISTORY)
        layout.write_json(sweep.result(run_id), {"status": "COMPLETED"})
    return sweep, ids


def _hpcjobs(*args: str, memory_gb: int = 0) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process (a FIFO blocks the whole process), at most `memory_gb` of memory."""

    def limit() -> None:
        if memory_gb:
            resource.setrlimit(resource.RLIMIT_AS, (memory_gb * 2**30, memory_gb * 2**30))

    return subprocess.run(
        [sys.executable, "-m", "hpcjobs", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )


def _one_error(proc: subprocess.CompletedProcess[str] | Any, *words: str) -> None:
    """Exit 2 and one line on stderr, naming each of `words`."""
    err = proc.stderr if isinstance(proc, subprocess.CompletedProcess) else proc.output
    assert proc.returncode == 2 if hasattr(proc, "returncode") else proc.exit_code == 2, err
    assert err.count("\n") == 1 and err.startswith("hpcjobs: error: "), err
    for word in words:
        assert word in err, err


# --- 1. unbounded reads -----------------------------------------------------------------------------


def test_submit_of_a_device_is_one_line_not_a_read_without_end(tmp_path: Path) -> None:
    proc = _hpcjobs("submit", "/dev/zero", "--results", str(tmp_path), "--dry-run", memory_gb=2)
    _one_error(proc, "/dev/zero", "expected a regular file; received a character device")


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_a_fifo_as_the_data_file_is_refused_not_waited_on(tmp_path: Path, suffix: str) -> None:
    fifo = tmp_path / f"data{suffix}"
    os.mkfifo(fifo)
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(f'name = "fifo"\n[data]\nsource = "{fifo}"\n[train]\nepochs = 1\n')
    proc = _hpcjobs("submit", str(sweep_file), "--results", str(tmp_path / "results"), "--dry-run")
    _one_error(proc, str(fifo), "received a FIFO")


def _fifo_in_place_of(tmp_path: Path, name: str) -> tuple[Path, str]:
    sweep, ids = _moons(tmp_path)
    path = sweep.run_dir(ids[0]) / name
    path.unlink()
    os.mkfifo(path)
    return path, ids[0]


@pytest.mark.parametrize("name", ["history.csv", "result.json"])
@pytest.mark.parametrize("command", ["status", "collect"])
def test_a_fifo_in_a_run_folder_is_named_and_the_rest_still_stand(
    tmp_path: Path, name: str, command: str
) -> None:
    path, run_id = _fifo_in_place_of(tmp_path, name)
    proc = _hpcjobs(command, "moons", "--results", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    where = f"{path}: unreadable" if command == "status" else f"{run_id}: {name} unreadable"
    assert f"hpcjobs: warning: {where} (expected a regular file; received a FIFO)\n" in proc.stderr


@pytest.mark.parametrize("name", ["history.csv", "result.json"])
@pytest.mark.parametrize("command", ["resubmit", "cancel"])
def test_a_fifo_in_a_run_folder_does_not_hang_the_commands_that_hold_the_sweep(
    tmp_path: Path, name: str, command: str
) -> None:
    _fifo_in_place_of(tmp_path, name)
    proc = _hpcjobs(command, "moons", "--results", str(tmp_path))
    assert proc.returncode == 0, proc.stderr


def _archive(path: Path, **members: tuple[bytes, bytes]) -> None:
    """An .npz of (npy header, data) members: a header may declare another shape than its data has."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (header, data) in members.items():
            archive.writestr(f"{name}.npy", header + data)


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"shape": shape, "fortran_order": False, "descr": np.dtype(dtype).str}
    )
    return np.lib.format.magic(1, 0) + buffer.getvalue()[len(np.lib.format.magic(1, 0)) :]


def test_an_archive_whose_header_declares_more_than_it_holds_is_refused_at_once(tmp_path: Path) -> None:
    x = np.zeros((8, 2), dtype=np.float32)
    path = tmp_path / "bomb.npz"
    _archive(
        path, x=(_npy_header((8, 2), "<f4"), x.tobytes()), y=(_npy_header((2 * 10**9,), "|i1"), b"\0" * 64)
    )
    with pytest.raises(DataError, match=r"array 'y' of shape \(2000000000,\).*Received: 64 bytes"):
        logindata.check_file(str(path))


def test_labels_that_cannot_match_the_samples_are_refused_before_they_are_read(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    # 200 MB of labels compress to 200 KB: reading them whole before comparing shapes costs the login node.
    np.savez_compressed(path, x=np.zeros((8, 2), dtype=np.float32), y=np.zeros(2 * 10**8, dtype=np.int8))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="8 samples, 200000000 labels"):
            logindata.check_file(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_labels_larger_than_the_login_nodes_share_of_memory_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.npz"
    np.savez(path, x=np.zeros((2**17, 1), dtype=np.float32), y=np.arange(2**17) % 2)
    monkeypatch.setattr(logindata, "memory_bytes", lambda: 2**19)
    with pytest.raises(
        DataError,
        match=r"array 'y' of shape \(131072,\) \(int64\) to fit .* \(0.5 MiB\) .* Received: 1.0 MiB",
    ):
        logindata.check_file(str(path))


def test_a_csv_too_large_to_read_on_the_login_node_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    path.write_text("0.5,0\n1.5,1\n" * 10_000)  # 120 kB: about 1 MB once read as numbers
    monkeypatch.setattr(logindata, "memory_bytes", lambda: 2**19)
    monkeypatch.setattr(logindata, "load", lambda source: pytest.fail("the file was read"))
    with pytest.raises(DataError, match="Expected the CSV file read as numbers to fit"):
        logindata.check_file(str(path))


def test_a_sweep_file_nested_too_deeply_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = CliRunner().invoke(cli, ["submit", str(path), "--dry-run", "--results", str(tmp_path)])
    _one_error(result, str(path), "nested too deeply")


def test_a_file_larger_than_the_read_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    with path.open("wb") as f:
        f.truncate(layout.READ_LIMIT + 1)  # sparse: nothing is written
    with pytest.raises(layout.FileProblem, match="expected at most 128 MiB; received 128 MiB"):
        layout.read_bytes(path)
    assert layout.read_bytes(path, limit=16, tail=True) == b"\0" * 16


# --- 2. damaged state -------------------------------------------------------------------------------


def _edit_manifest(sweep: layout.SweepDir, edit: Any) -> None:
    data = json.loads(sweep.manifest.read_text())
    edit(data)
    sweep.manifest.write_text(json.dumps(data))


def test_a_duplicated_run_id_is_one_line(tmp_path: Path) -> None:
    sweep, ids = _moons(tmp_path)
    _edit_manifest(sweep, lambda d: d["runs"].append(d["runs"][0]))
    for command in ("collect", "status"):
        result = CliRunner().invoke(cli, [command, "moons", "--results", str(tmp_path)])
        _one_error(result, "manifest.json", f"runs 0 and 6 share the run_id '{ids[0]}'")


@pytest.mark.parametrize("command", ["status", "resubmit", "cancel"])
@pytest.mark.parametrize("job_id", ["abc", "0", "99999999999999999999"])
def test_a_local_job_id_that_is_no_process_id_is_one_line(tmp_path: Path, command: str, job_id: str) -> None:
    _moons(tmp_path, executor="local", job_id=job_id)
    result = CliRunner().invoke(cli, [command, "moons", "--results", str(tmp_path)])
    _one_error(result, f"'job_id' = '{job_id}': expected a local worker's process id")


def test_a_deeply_nested_manifest_or_result_is_one_line(tmp_path: Path) -> None:
    sweep, ids = _moons(tmp_path)
    deep = "[" * 100_000 + "]" * 100_000
    layout.write_text(sweep.result(ids[1]), deep)
    got = status.gather(sweep, lambda executor: FakeBackend())
    assert got.problems == [
        f"{sweep.result(ids[1])}: unreadable (JSON nested too deeply: expected the file hpcjobs wrote)"
    ]
    layout.write_text(sweep.manifest, deep)
    result = CliRunner().invoke(cli, ["status", "moons", "--results", str(tmp_path)])
    _one_error(result, "manifest.json", "nested too deeply")


def test_status_of_every_sweep_shows_the_healthy_ones_and_names_a_damaged_one(tmp_path: Path) -> None:
    _moons(tmp_path)
    damaged = layout.SweepDir(tmp_path / "broken")
    layout.write_text(damaged.manifest, '{"version": 1, "runs": ')
    result = CliRunner().invoke(cli, ["status", "--results", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "moons" in result.stdout
    assert result.stderr.startswith(
        f"hpcjobs: warning: broken: left out: {damaged.manifest}: unreadable manifest"
    )


def test_a_run_removed_from_the_manifest_is_reported(tmp_path: Path) -> None:
    sweep, ids = _moons(tmp_path)
    _edit_manifest(sweep, lambda d: d["runs"].pop(2))
    line = (
        f"{sweep.manifest}: expected every run of the sweep; received none for 1 that its run folders or "
        f"jobs name ({ids[2]}): left out (was the manifest edited?)"
    )
    assert status.gather(sweep, lambda executor: FakeBackend()).problems == [line]
    assert collect.collect(sweep).problems == [line]


@pytest.mark.parametrize("epoch", ["99999999999999999999", "-3", "2.5"])
def test_an_epoch_that_is_no_whole_number_from_0_makes_the_history_unreadable(
    tmp_path: Path, epoch: str
) -> None:
    text = HISTORY + f"{epoch},0.4,0.8,0.3\n"
    with pytest.raises(ValueError, match=f"line 4 has epoch {epoch}: expected a whole number from 0"):
        history.progress(text)
    blocks, problems = parse_histories({"a": text.encode(), "b": HISTORY.encode()})
    assert problems == {"a": f"line 4 has epoch {epoch}: expected a whole number from 0"}
    assert [b.run_ids for b in blocks] == [["b"]]


def test_more_epochs_than_the_run_trains_is_a_warning_not_21_of_20(tmp_path: Path) -> None:
    sweep, ids = _moons(tmp_path)  # 30 epochs
    rows = "".join(f"{e},0.5,0.7,0.4\n" for e in range(31))
    layout.write_text(sweep.history(ids[0]), HEADER + rows)
    got = status.gather(sweep, lambda executor: FakeBackend())
    assert got.problems == [
        f"{sweep.history(ids[0])}: expected at most 30 epochs; received 31 (a damaged or edited file)"
    ]


@pytest.mark.parametrize("text", ["", "\0" * 4096, HISTORY + "\0" * 4096])
def test_an_empty_or_nul_filled_history_of_a_completed_run_is_a_warning(tmp_path: Path, text: str) -> None:
    sweep, ids = _moons(tmp_path)
    layout.write_text(sweep.history(ids[0]), text)
    got = collect.collect(sweep)
    assert len(got.problems) == 1 and got.problems[0].startswith(f"{ids[0]}: "), got.problems
    assert "NUL bytes" in got.problems[0] if "\0" in text else "without usable epochs" in got.problems[0]
    shown = status.gather(sweep, lambda executor: FakeBackend()).problems
    assert len(shown) == 1 and shown[0].startswith(f"{sweep.history(ids[0])}: "), shown


# --- 3. collect --out -------------------------------------------------------------------------------


@pytest.mark.parametrize("kept", ["manifest.json", "sweep.toml", "runs/{run}/history.csv", "plots/x.png"])
def test_collect_out_onto_a_file_the_sweep_keeps_is_refused(tmp_path: Path, kept: str) -> None:
    sweep, ids = _moons(tmp_path)
    before = sweep.manifest.read_bytes()
    out = sweep.root / kept.format(run=ids[0])
    result = CliRunner().invoke(cli, ["collect", "moons", "--results", str(tmp_path), "--out", str(out)])
    _one_error(result, f"--out {out} is a file hpcjobs keeps for sweep 'moons'")
    assert sweep.manifest.read_bytes() == before
    assert sweep.history(ids[0]).read_text() == HISTORY


def test_collect_out_into_a_folder_that_does_not_exist_creates_none(tmp_path: Path) -> None:
    _moons(tmp_path)
    out = tmp_path / "nowhere" / "x.csv"
    result = CliRunner().invoke(cli, ["collect", "moons", "--results", str(tmp_path), "--out", str(out)])
    _one_error(result, f"the folder {out.parent} does not exist")
    assert not out.parent.exists()
