"""End to end on this machine: the moons example through the local executor, status, collect."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcjobs.cli import cli

from .conftest import EXAMPLES

pytestmark = pytest.mark.keras


def test_moons_example_runs_locally_end_to_end(tmp_path: Path) -> None:
    results = str(tmp_path / "results")
    runner = CliRunner()
    submitted = runner.invoke(
        cli, ["submit", str(EXAMPLES / "moons.toml"), "--executor", "local", "--results", results, "--wait"]
    )
    assert submitted.exit_code == 0, submitted.output
    assert "submitted 6 runs as 2 local tasks" in submitted.output

    st = json.loads(runner.invoke(cli, ["status", "moons", "--results", results, "--json"]).output)
    assert st["counts"] == {"COMPLETED": 6}
    assert {(r["epochs_done"], r["epochs"]) for r in st["runs"]} == {(30, 30)}

    collected = runner.invoke(cli, ["collect", "moons", "--results", results, "--format", "json"])
    assert collected.exit_code == 0, collected.output
    rows = json.loads(collected.output)
    assert [r["model.hidden"] for r in rows] == [[3, 5], [16, 16], [64]]
    assert [(r["runs_finished"], r["runs_total"]) for r in rows] == [(2, 2)] * 3
    assert [r["params"] for r in rows] == [41, 354, 322]  # 2·3+3 + 3·5+5 + 5·2+2, and so on
    for row in rows:
        assert 0.5 < row["best_val_categorical_accuracy_mean"] <= 1.0
        assert 0.0 <= row["test_f1_macro_mean"] <= 1.0
    assert (tmp_path / "results" / "moons" / "summary.csv").is_file()

    again = runner.invoke(
        cli, ["submit", str(EXAMPLES / "moons.toml"), "--executor", "local", "--results", results]
    )
    assert again.exit_code == 0
    assert "nothing to submit" in again.output


def test_same_name_with_other_settings_is_refused(tmp_path: Path) -> None:
    results = tmp_path / "results"
    runner = CliRunner()
    first = tmp_path / "a.toml"
    first.write_text('name = "s"\n[data]\nsource = "moons"\n[train]\nepochs = 1\n')
    assert (
        runner.invoke(
            cli, ["submit", str(first), "--executor", "local", "--results", str(results), "--wait"]
        ).exit_code
        == 0
    )
    second = tmp_path / "b.toml"
    second.write_text('name = "s"\n[data]\nsource = "moons"\n[train]\nepochs = 2\n')
    before = sorted(p.name for p in (results / "s").rglob("*"))
    refused = runner.invoke(cli, ["submit", str(second), "--executor", "local", "--results", str(results)])
    assert refused.exit_code == 2
    assert "holds sweep 's' with different settings" in refused.output
    assert sorted(p.name for p in (results / "s").rglob("*")) == before


@pytest.mark.parametrize("sigint", [signal.default_int_handler, signal.SIG_IGN], ids=["default", "ignored"])
def test_cancel_stops_local_workers(tmp_path: Path, sigint: object) -> None:
    """Also when `submit` ran in the background of a script, where the shell makes it ignore SIGINT."""
    from hpcjobs import backends, layout, status

    sweep_file = tmp_path / "long.toml"
    sweep_file.write_text('name = "long"\n[data]\nsource = "moons"\n[train]\nepochs = 1000\n')
    runner = CliRunner()
    results = str(tmp_path / "results")
    previous = signal.signal(signal.SIGINT, sigint)
    try:
        submit = ["submit", str(sweep_file), "--executor", "local", "--results", results]
        submitted = runner.invoke(cli, submit)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert submitted.exit_code == 0
    sweep = layout.sweep_dir("long", results)
    deadline = time.monotonic() + 120
    while status.gather(sweep, backends.for_executor).runs[0].epochs_done < 2:
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.5)
    cancelled = runner.invoke(cli, ["cancel", "long", "--results", results])
    assert cancelled.exit_code == 0 and cancelled.output.startswith("cancelled jobs: ")
    deadline = time.monotonic() + 30
    while not (st := status.gather(sweep, backends.for_executor)).done:
        assert time.monotonic() < deadline, "the local worker did not stop"
        time.sleep(0.5)
    [run] = st.runs
    # Stopped. CANCELLED where the lane recorded it within the second submitit's controller leaves it before
    # SIGKILL, else FAILED (the task ended without a result); test_worker pins the CANCELLED record itself.
    assert run.state in ("CANCELLED", "FAILED") and run.epochs_done < 1000


def test_ctrl_c_on_wait_leaves_the_run_training_and_a_killed_controller_leaves_no_retrain(
    tmp_path: Path,
) -> None:
    """Ctrl-C on `submit --wait` (SIGINT to its process group, as a terminal sends it) stops the waiting
    only; then kill -9 of the controller leaves its training process running, which status shows and
    resubmit leaves alone (the run lock) instead of training the run a second time; cancel stops it."""
    import os
    import signal
    import subprocess
    import sys

    from hpcjobs import backends, layout, locks, manifest, status

    from .conftest import REPO

    sweep_file = tmp_path / "long.toml"
    sweep_file.write_text('name = "long"\n[data]\nsource = "moons"\n[train]\nepochs = 1000\n')
    results = str(tmp_path / "results")
    command = ["submit", str(sweep_file), "--executor", "local", "--wait", "--results", results]
    with (tmp_path / "stderr").open("w") as stderr:  # a file: the workers it starts would hold a pipe open
        waiting = subprocess.Popen(
            [sys.executable, "-m", "hpcjobs", *command],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own process group, like a shell job
        )

    def epochs() -> int:
        return status.gather(layout.sweep_dir("long", results), backends.for_executor).runs[0].epochs_done

    deadline = time.monotonic() + 180
    while not (tmp_path / "results" / "long" / "manifest.json").exists() or epochs() < 2:
        assert time.monotonic() < deadline and waiting.poll() is None, "the run never started"
        time.sleep(0.5)
    os.killpg(waiting.pid, signal.SIGINT)
    assert waiting.wait(timeout=30) == 130
    err = (tmp_path / "stderr").read_text()
    assert "long: stopped waiting; the runs go on training. Watch them: hpcjobs status long --watch" in err
    assert "Traceback" not in err
    sweep = layout.sweep_dir("long", results)
    before = epochs()
    deadline = time.monotonic() + 60
    while epochs() <= before:
        assert time.monotonic() < deadline, "the run stopped training with the Ctrl-C"
        time.sleep(0.5)

    [sub] = manifest.read(sweep).submissions
    os.kill(int(sub.job_id), signal.SIGKILL)  # the controller; its training process is left behind
    deadline = time.monotonic() + 30
    while backends._ours(sub):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    [run] = status.gather(sweep, backends.for_executor).runs
    assert (run.state, run.note.endswith("(its job has ended)")) == ("RUNNING", True), run
    resubmitted = CliRunner().invoke(cli, ["resubmit", "long", "--failed", "--results", results])
    assert resubmitted.output.strip() == "long: nothing to resubmit"

    trainer = locks.holder(sweep, run.run_id)
    assert trainer is not None and trainer.is_here()
    cancelled = CliRunner().invoke(cli, ["cancel", "long", "--results", results])
    assert (
        # The killed controller is gone: cancel lists only what it signalled.
        cancelled.output.strip() == f"cancelled jobs: {trainer.pid} (trainer of {run.run_id})"
    )
    deadline = time.monotonic() + 60
    while locks.holder(sweep, run.run_id) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # Stopped: CANCELLED, or FAILED where SIGKILL came first (as in test_cancel_stops_local_workers).
    assert status.gather(sweep, backends.for_executor).runs[0].state in ("CANCELLED", "FAILED")
