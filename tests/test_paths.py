"""Nothing outside the sweep: names checked where they come in, symbolic links and other users' folders
refused, --out only ever a regular file or a new path. Each case is one line on stderr and exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcjobs import backends, layout, worker
from hpcjobs.cli import cli

from .test_validation import make_sweep

OTHER_UID = 65534  # nobody

as_root = pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root")


def hpcjobs(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["status", "collect", "cancel", "resubmit"])
def test_a_300_character_sweep_name_is_one_line(tmp_path: Path, command: str) -> None:
    code, out, err = hpcjobs(command, "a" * 300, "--results", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.strip() == (
        "hpcjobs: error: a sweep name is 300 bytes long: expected at most 255 (a file name's limit); "
        "expected a sweep name or folder"
    )


@pytest.mark.parametrize("kind", ["folder", "symlink", "fifo"])
def test_collect_out_refuses_anything_but_a_regular_file_or_a_new_path(tmp_path: Path, kind: str) -> None:
    sweep, _ = make_sweep(tmp_path)
    out = tmp_path / "out"
    target = tmp_path / "precious"
    target.write_text("keep me")
    if kind == "folder":
        out.mkdir()
    elif kind == "symlink":
        out.symlink_to(target)
    else:
        os.mkfifo(out)
    code, stdout, err = hpcjobs("collect", "moons", "--results", str(sweep.root.parent), "--out", str(out))
    assert (code, stdout) == (2, "")
    expected = {"folder": "a folder", "symlink": "a symbolic link", "fifo": "not a regular file"}[kind]
    assert err.strip() == (
        f"hpcjobs: error: --out {out} is {expected}: expected a regular file to replace or a new path"
    )
    assert target.read_text() == "keep me"
    assert not sweep.summary_csv.exists()  # refused before anything was written


def test_collect_out_replaces_a_regular_file_and_writes_a_new_path(tmp_path: Path) -> None:
    sweep, _ = make_sweep(tmp_path)
    for out in (tmp_path / "new.csv", tmp_path / "old.csv"):
        (tmp_path / "old.csv").write_text("old")
        code, _, _ = hpcjobs(
            "collect", "moons", "--results", str(sweep.root.parent), "--format", "csv", "--out", str(out)
        )
        assert code == 0 and out.read_text().startswith("config_id,")


def test_a_run_folder_that_is_a_symlink_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    sweep, ids = make_sweep(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = sweep.run_dir(ids[0])
    for child in run_dir.iterdir():
        child.unlink()
    run_dir.rmdir()
    run_dir.symlink_to(elsewhere)
    assert worker.run_one(sweep, ids[0]) == "FAILED"
    assert list(elsewhere.iterdir()) == []


def test_a_history_that_is_a_symlink_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep, ids = make_sweep(tmp_path)
    sweep.result(ids[0]).unlink()
    outside = tmp_path / "outside.csv"
    outside.write_text("")
    sweep.history(ids[0]).unlink()
    sweep.history(ids[0]).symlink_to(outside)
    assert worker.run_one(sweep, ids[0]) == "FAILED"
    assert f"{sweep.history(ids[0])} is a symbolic link" in capsys.readouterr().out
    assert outside.read_text() == ""


@as_root
def test_a_run_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    sweep, ids = make_sweep(tmp_path)
    sweep.result(ids[0]).unlink()
    os.chown(sweep.run_dir(ids[0]), OTHER_UID, OTHER_UID)
    assert worker.run_one(sweep, ids[0]) == "FAILED"
    assert not sweep.result(ids[0]).exists()


@as_root
@pytest.mark.parametrize("command", ["submit", "resubmit"])
def test_a_sweep_folder_of_another_user_is_refused(
    tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planted manifest in a folder someone else owns (mode 0755): submitit's pickles must not go in."""
    from .conftest import EXAMPLES

    fake = backends.FakeBackend()
    monkeypatch.setattr(backends, "auto", lambda executor="auto": fake)
    monkeypatch.setattr(backends, "for_executor", lambda executor: fake)
    sweep, ids = make_sweep(tmp_path)
    for run_id in ids:
        layout.write_json(sweep.result(run_id), {"status": "FAILED"})
    sweep.root.chmod(0o755)
    os.chown(sweep.root, OTHER_UID, OTHER_UID)
    results = str(sweep.root.parent)
    args = ["submit", str(EXAMPLES / "moons.toml")] if command == "submit" else ["resubmit", "moons"]
    code, out, err = hpcjobs(*args, "--results", results)
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"hpcjobs: error: {sweep.root} belongs to another user (uid {OTHER_UID}): expected a sweep "
        f"folder of yours (pick another name or --results folder)"
    )
    assert fake.submitted == [] and not sweep.submitit_dir.exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[" * 10000 + "]" * 10000, "--where value is nested too deeply"),
        ('{"a": 1}', """--where value '{"a": 1}': expected a number, a word or a list"""),
    ],
)
def test_where_values_that_no_setting_can_equal_are_one_line(
    tmp_path: Path, value: str, expected: str
) -> None:
    sweep, _ = make_sweep(tmp_path)
    code, out, err = hpcjobs(
        "collect", "moons", "--results", str(sweep.root.parent), "--where", f"model.hidden={value}"
    )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(f"hpcjobs: error: {expected}")
