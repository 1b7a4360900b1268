"""Packing wired into submit, resubmit and a halving search's rungs, through the fake scheduler."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcjobs import backends, layout, manifest, measured, packing, packplan, render
from hpcjobs import sweep as sweeps
from hpcjobs.cli import cli
from hpcjobs.promote import promote
from hpcjobs.vocab import RunState

from .conftest import EXAMPLES
from .test_search import SWEEP as HALVING
from .test_search import _finish

# The lab cluster: 2 fake GPUs, so the runs train on CPUs.
LAB = packplan.Room(2, "2 GPUs in 'gpu'", packplan.QUEUE_S, gpu=False)


def test_the_lab_sweep_goes_into_two_full_tasks_and_the_manifest_keeps_the_estimate(tmp_path: Path) -> None:
    fake = backends.FakeBackend(scripted_room=LAB)
    outcome = sweeps.submit(EXAMPLES / "digits_depth.toml", tmp_path / "r", fake, lambda _: fake)
    assert [len(task) for task in outcome.tasks] == [12, 12]  # was 12 tasks × 2 processes × 1 run
    assert (outcome.settings.trials_per_gpu, outcome.settings.runs_per_task) == (1, 12)
    assert outcome.plan is not None and outcome.where == "2 GPUs in 'gpu'"
    kept = manifest.read(outcome.sweep).packing
    assert kept is not None and kept["where"] == "2 GPUs in 'gpu'"
    assert kept["estimate"]["tasks"] == 2 and kept["estimate"]["seconds"] == pytest.approx(
        outcome.plan.seconds
    )
    assert kept["inputs"]["startup_s"] == packplan.STARTUP_S  # nothing measured yet: the default


def test_earlier_results_give_the_start_up_and_each_runs_training(tmp_path: Path) -> None:
    earlier = layout.SweepDir(tmp_path / "r" / "before")
    earlier.root.mkdir(parents=True)
    layout.write_json(earlier.manifest, {"submissions": [{"executor": "fake", "tasks": [["a", "b"]]}]})
    for run_id, startup in [("a", 9.0), ("b", 1.0)]:
        earlier.run_dir(run_id).mkdir(parents=True)
        row = {"backend": "tensorflow", "params": 6_570, "device": "cpu", "startup_seconds": startup}
        row |= {"seconds_per_epoch": 0.1, "config": {"data": {"source": "digits"}}}
        layout.write_json(earlier.result(run_id), row)
    fake = backends.FakeBackend(scripted_room=LAB)
    outcome = sweeps.submit(
        EXAMPLES / "digits_depth.toml", tmp_path / "r", fake, lambda _: fake, dry_run=True
    )
    assert outcome.plan is not None and outcome.plan.startup_s == 9.0
    # [64, 32] and [128] are within 2× of 6,570 weights: 20 epochs × 0.1 s; the others at the default rate
    default = 20 * 1_797 * 0.7 / measured.SAMPLES_PER_S
    expected = (12 * (20 * 0.1) + 12 * default) / 24 + measured.RUN_OVERHEAD_S
    assert outcome.plan.run_s == pytest.approx(expected)


def test_a_halving_rungs_survivors_are_packed_by_the_same_model(tmp_path: Path) -> None:
    fake = backends.FakeBackend(scripted_room=LAB)
    path = tmp_path / "halve.toml"
    path.write_text(HALVING)
    sweeps.submit(path, tmp_path / "r", fake, lambda _: fake)
    sweep = layout.SweepDir(tmp_path / "r" / "halve")
    assert [len(t) for t in fake.submitted[0].tasks] == [9, 9]  # 18 one-epoch runs on 2 slots
    _finish(sweep, manifest.read(sweep).run_ids, 1)
    first = promote(sweep, lambda _: fake)
    assert first.decision.kind == "promote"
    # 6 survivors, 2 more epochs each: 2 tasks of 3, not a task each waiting for one of 2 slots
    assert [len(t) for t in first.submissions[0].tasks] == [3, 3]


def test_resubmitted_runs_are_packed_for_the_room_there_is(tmp_path: Path) -> None:
    fake = backends.FakeBackend(scripted_room=LAB)
    outcome = sweeps.submit(EXAMPLES / "digits_depth.toml", tmp_path / "r", fake, lambda _: fake)
    failed = outcome.to_submit[:3]
    for run_id in outcome.to_submit:
        status = RunState.FAILED if run_id in failed else RunState.COMPLETED
        layout.write_json(outcome.sweep.result(run_id), {"run_id": run_id, "status": status})
    again = sweeps.resubmit(outcome.sweep, "failed", lambda _: fake)
    assert sorted(r for t in again.tasks for r in t) == sorted(failed)
    assert again.plan is not None and len(again.tasks) == again.plan.tasks <= 2


def test_collect_puts_the_estimate_beside_what_the_sweep_took(tmp_path: Path) -> None:
    fake = backends.FakeBackend(scripted_room=LAB)
    outcome = sweeps.submit(EXAMPLES / "digits_depth.toml", tmp_path / "r", fake, lambda _: fake)
    man = manifest.read(outcome.sweep)
    submitted = datetime.fromisoformat(man.submissions[0].submitted).astimezone(timezone.utc)
    ends = [(submitted + timedelta(seconds=10 + i)).isoformat() for i in range(24)]
    assert outcome.plan is not None
    assert packing.estimate_and_took(man, ends) == (pytest.approx(outcome.plan.seconds), 33.0)
    assert packing.estimate_and_took(man, [*ends[:-1], None]) is None  # a run has not ended
    older = replace(man, packing=None)
    assert packing.estimate_and_took(older, ends) is None  # a manifest from before issue 20
    # A halving search: its later rungs' estimates (search.json) add to its first rung's.
    assert packing.estimate_and_took(man, ends, [10.0, 5.0]) == (
        pytest.approx(outcome.plan.seconds + 15),
        33.0,
    )
    assert packing.estimate_and_took(man, ends, [10.0, None]) is None  # a rung from before they were kept
    assert render.took(50.0, 61.0) == "took 61 s (submit to end), estimated ~50 s: 1.22× the estimate"


def test_resubmit_says_how_it_packed_the_runs_and_its_estimate(tmp_path: Path) -> None:
    fake = backends.FakeBackend()
    outcome = sweeps.submit(EXAMPLES / "digits_depth.toml", tmp_path / "r", fake, lambda _: fake)
    for run_id in outcome.to_submit:
        status = RunState.FAILED if run_id in outcome.to_submit[:3] else RunState.COMPLETED
        layout.write_json(outcome.sweep.result(run_id), {"run_id": run_id, "status": status})
    result = CliRunner().invoke(cli, ["resubmit", "digits-depth", "--results", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    # 16 slots and 10 s start-ups against ~6.8 s runs: each its own task, all at once
    assert result.output.startswith("digits-depth: resubmitted 3 runs as 3 fake tasks; ~22 s: start-up ~10 s")
    assert result.output.endswith("; 16 tasks at once (jobs 1000)\n")  # the CLI's own fake scheduler
