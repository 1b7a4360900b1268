"""Status: history progress, the run-state decision table, and `gather` over a hand-built sweep folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpcjobs import layout, locks, manifest, render, status
from hpcjobs.backends import FakeBackend
from hpcjobs.history import Progress
from hpcjobs.settings import Run
from hpcjobs.slurm import JobRow
from hpcjobs.spec import expand, load_spec, parse_spec
from hpcjobs.vocab import OOM_HINT, Submission

from .conftest import EXAMPLES, PACKED

HISTORY = """\
epoch,categorical_accuracy,loss,val_categorical_accuracy,val_loss
0,0.50,0.70,0.55,0.69
1,0.80,0.40,0.85,0.38
"""

# --- run_state --------------------------------------------------------------------------------------

NO_PROGRESS = Progress()
SOME_PROGRESS = Progress(3, {"val_loss": 0.4})
TRAINER = locks.Holder(4242, "1234", "node1")
ENDED_NOTE = "the task ended without writing this run's result"


def _case(
    name: str,
    expected: tuple[str, str],
    result: dict[str, Any] | None = None,
    row: JobRow | None = None,
    submitted: bool = True,
    progress: Progress = NO_PROGRESS,
    trainer: locks.Holder | None = None,
) -> Any:
    return pytest.param(result, row, submitted, progress, trainer, expected, id=name)


RUN_STATES = [
    _case(
        "result-wins-over-scheduler",
        ("COMPLETED", ""),
        result={"status": "COMPLETED"},
        row=JobRow("RUNNING"),
        progress=SOME_PROGRESS,
    ),
    _case(
        "result-error-is-the-note",
        ("DIVERGED", "loss is nan at epoch 3"),
        result={"status": "DIVERGED", "error": "loss is nan at epoch 3"},
    ),
    _case(
        "result-hint-is-the-note",
        ("OUT_OF_MEMORY", "lower train.batch_size"),
        result={"status": "OUT_OF_MEMORY", "error": "", "hint": "lower train.batch_size"},
    ),
    _case("result-without-status", ("FAILED", ""), result={}),
    _case("not-submitted", ("NOT_SUBMITTED", ""), submitted=False),
    _case(
        "not-submitted-but-training",
        ("RUNNING", "submitted outside hpcjobs (export-sbatch): state read from its files"),
        submitted=False,
        progress=SOME_PROGRESS,
    ),
    _case("no-scheduler-row", ("SUBMITTED", "not yet known to the scheduler")),
    _case("running", ("RUNNING", ""), row=JobRow("RUNNING"), progress=SOME_PROGRESS),
    _case("running-under-its-lock", ("RUNNING", ""), row=JobRow("RUNNING"), trainer=TRAINER),
    _case(
        "running-task-not-on-it-yet",
        ("PENDING", "waiting for a process of its task"),
        row=JobRow("RUNNING"),
    ),
    _case("pending-with-reason", ("PENDING", "Priority"), row=JobRow("PENDING", reason="Priority")),
    _case("pending-reason-None", ("PENDING", ""), row=JobRow("PENDING", reason="None")),
    _case("requeued", ("REQUEUED", ""), row=JobRow("REQUEUED"), progress=SOME_PROGRESS),
    _case("completed-no-result", ("FAILED", ENDED_NOTE), row=JobRow("COMPLETED"), progress=SOME_PROGRESS),
    _case("local-ended-no-result", ("FAILED", ENDED_NOTE), row=JobRow("ENDED")),
    _case("timeout", ("TIMEOUT", ""), row=JobRow("TIMEOUT"), progress=SOME_PROGRESS),
    _case("out-of-memory", ("OUT_OF_MEMORY", OOM_HINT), row=JobRow("OUT_OF_MEMORY")),
    _case("node-fail", ("NODE_FAIL", ""), row=JobRow("NODE_FAIL")),
    _case("cancelled", ("CANCELLED", ""), row=JobRow("CANCELLED")),
    _case("preempted", ("PREEMPTED", ""), row=JobRow("PREEMPTED")),
]


@pytest.mark.parametrize(("result", "row", "submitted", "progress", "trainer", "expected"), RUN_STATES)
def test_run_state(
    result: dict[str, Any] | None,
    row: JobRow | None,
    submitted: bool,
    progress: Progress,
    trainer: locks.Holder | None,
    expected: tuple[str, str],
) -> None:
    assert status.run_state(result, row, submitted, progress, trainer) == expected


# --- gather -----------------------------------------------------------------------------------------


def _sweep(root: Path, runs: list[Run], tasks: list[list[str]]) -> layout.SweepDir:
    """A sweep folder as `submit` leaves it: the manifest with one fake submission."""
    sweep = layout.SweepDir(root / "sweep")
    layout.make_private_dir(sweep.root)
    man = manifest.Manifest.new("moons", "tensorflow", runs, PACKED)
    man.submissions.append(Submission("fake", "1000", tasks))
    manifest.write(sweep, man)
    return sweep


def test_gather_merges_scheduler_states_with_run_folders(tmp_path: Path) -> None:
    runs = expand(load_spec(EXAMPLES / "moons.toml"))  # 6 runs, 30 epochs each
    ids = [r.run_id for r in runs]
    sweep = _sweep(tmp_path, runs, [[i] for i in ids])
    layout.write_text(sweep.history(ids[0]), HISTORY)
    layout.write_text(sweep.history(ids[1]), HISTORY)
    layout.write_json(sweep.result(ids[1]), {"status": "COMPLETED"})
    layout.write_text(
        sweep.job_log("1000_3"),
        "epoch 7\nslurmstepd: error: *** JOB 1003 CANCELLED DUE TO TIME LIMIT ***\n\n",
    )
    fake = FakeBackend(
        scripted={
            ("1000", 0): JobRow("RUNNING", elapsed="00:01:10"),
            ("1000", 1): JobRow("COMPLETED", "0:0", "00:02:00"),
            ("1000", 2): JobRow("PENDING", reason="Priority"),
            ("1000", 3): JobRow("TIMEOUT", "0:0", "00:10:01"),
            ("1000", 4): JobRow("COMPLETED", "0:0", "00:00:05"),
            ("999", 5): JobRow("RUNNING"),  # another job: not this sweep's
        }
    )

    got = status.gather(sweep, backend_for=lambda name: fake)

    assert fake.state_calls == 1
    assert got.name == "moons"
    assert got.warning == ""
    assert [
        (r.run_id, r.state, r.epochs_done, r.epochs, r.metric, r.value, r.elapsed, r.job, r.note)
        for r in got.runs
    ] == [
        (ids[0], "RUNNING", 2, 30, "val_categorical_accuracy", 0.85, "", "1000_0", ""),
        (ids[1], "COMPLETED", 2, 30, "val_categorical_accuracy", 0.85, "", "1000_1", ""),
        (ids[2], "PENDING", 0, 30, "", None, "", "1000_2", "Priority"),
        (
            ids[3],
            "TIMEOUT",
            0,
            30,
            "",
            None,
            "",
            "1000_3",
            "slurmstepd: error: *** JOB 1003 CANCELLED DUE TO TIME LIMIT ***",
        ),
        (
            ids[4],
            "FAILED",
            0,
            30,
            "",
            None,
            "",
            "1000_4",
            "the task ended without writing this run's result",
        ),
        (ids[5], "SUBMITTED", 0, 30, "", None, "", "1000_5", "not yet known to the scheduler"),
    ]
    assert got.counts == {
        "SUBMITTED": 1,
        "PENDING": 1,
        "RUNNING": 1,
        "COMPLETED": 1,
        "TIMEOUT": 1,
        "FAILED": 1,
    }
    assert not got.done


def test_gather_runs_of_a_task_that_no_process_trains_yet_are_pending(tmp_path: Path) -> None:
    """The run being trained is the one whose lock a process holds: status reads it, never guesses."""
    runs = expand(load_spec(EXAMPLES / "moons.toml"))[:3]
    ids = [r.run_id for r in runs]
    sweep = _sweep(tmp_path, runs, [ids])  # one task trains all three in turn: a plain job "1000"
    layout.write_json(
        sweep.result(ids[0]),
        {"status": "COMPLETED", "started": "2024-05-02T10:00:00", "finished": "2024-05-02T10:01:30"},
    )
    fake = FakeBackend(scripted={("1000", 0): JobRow("RUNNING")})

    sweep.run_dir(ids[1]).mkdir(parents=True)
    with locks.run_lock(sweep, ids[1]) as held:
        assert held is not None
        got = status.gather(sweep, backend_for=lambda name: fake)

    assert [(r.state, r.job, r.note) for r in got.runs] == [
        ("COMPLETED", "1000", ""),
        ("RUNNING", "1000", ""),
        ("PENDING", "1000", "waiting for a process of its task"),
    ]
    assert got.runs[0].elapsed == "00:01:30"
    assert fake.state_calls == 1


def test_gather_scheduler_down_shows_disk_state_with_a_warning(tmp_path: Path) -> None:
    runs = expand(load_spec(EXAMPLES / "moons.toml"))[:2]
    ids = [r.run_id for r in runs]
    sweep = _sweep(tmp_path, runs, [[i] for i in ids])
    layout.write_json(sweep.result(ids[0]), {"status": "COMPLETED"})
    fake = FakeBackend(down=True)

    got = status.gather(sweep, backend_for=lambda name: fake)

    assert [r.state for r in got.runs] == ["COMPLETED", "SUBMITTED"]
    assert got.warning.startswith("Slurm unreachable")
    assert fake.state_calls == 1


def test_gather_1000_runs_makes_one_scheduler_call(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "name": "big",
            "data": {"source": "moons"},
            "sweep": {"train.batch_size": list(range(1, 251)), "seeds": [0, 1, 2, 3]},
        }
    )
    runs = expand(spec)
    assert len(runs) == 1000
    sweep = _sweep(tmp_path, runs, [[r.run_id] for r in runs])
    layout.write_text(sweep.history(runs[0].run_id), HISTORY)
    layout.write_json(sweep.result(runs[999].run_id), {"status": "COMPLETED"})
    scripted = {("1000", i): JobRow("PENDING", reason="JobArrayTaskLimit") for i in range(1000)}
    scripted[("1000", 0)] = JobRow("RUNNING")
    fake = FakeBackend(scripted=scripted)

    got = status.gather(sweep, backend_for=lambda name: fake)

    assert fake.state_calls == 1
    assert len(got.runs) == 1000
    assert got.counts == {"PENDING": 998, "RUNNING": 1, "COMPLETED": 1}
    assert (got.runs[0].epochs_done, got.runs[0].value) == (2, 0.85)
    assert got.runs[500].note == "JobArrayTaskLimit"


def test_rows_that_need_a_look_come_first_failed_then_running_then_the_quiet() -> None:
    states = ["PRUNED", "COMPLETED", "PRUNED", "FAILED", "RUNNING", "PENDING", "COMPLETED", "DIVERGED"]
    runs = [status.RunStatus(f"r{i}", "c", 0, s, 0, 1, "", None, "", "") for i, s in enumerate(states)]
    st = status.SweepStatus("x", runs)
    shown, left = st.shown(4)
    assert [r.run_id for r in shown] == ["r3", "r7", "r4", "r5"]
    assert left == {"COMPLETED": 2, "PRUNED": 2}
    everything = ["r3", "r7", "r4", "r5", "r1", "r6", "r0", "r2"]  # the search's survivors before the stopped
    assert [r.run_id for r in st.shown(None)[0]] == everything
    assert [r.run_id for r in st.shown(10)[0]] == everything


def test_a_search_in_an_80x24_terminal_lists_its_running_runs_above_the_pruned_ones() -> None:
    states = ["PRUNED"] * 30 + ["RUNNING"] * 3 + ["PRUNED"] * 20
    runs = [status.RunStatus(f"r{i}", "c", 0, s, 1, 2, "", None, "", "") for i, s in enumerate(states)]
    text = render.to_text(render.status_table(status.SweepStatus("quest", runs), 50, 80, 24))
    rows = [line.split()[1] for line in text.splitlines()[3:] if line.startswith("r")]
    assert rows[:3] == ["RUNNING"] * 3 and set(rows[3:]) == {"PRUNED"}


def test_elapsed_is_the_runs_own_time_and_never_its_jobs() -> None:
    result = {"started": "2026-11-27T10:00:00+00:00", "finished": "2026-11-27T11:02:03+00:00"}
    assert status.elapsed(result, None, now=0.0) == "01:02:03"
    assert status.elapsed(None, 1000.0, now=1075.4) == "00:01:15"  # training: since its process took it
    assert status.elapsed({"status": "FAILED"}, 1000.0, now=1010.0) == "00:00:10"  # trained again
    assert status.elapsed(None, None, now=5.0) == ""  # waiting, or ended without a result


def test_elapsed_of_a_run_never_goes_back_from_running_to_completed(tmp_path: Path) -> None:
    """It did: a running run showed its job's time (01:30:00 into a task that trained others first), then
    the run's own once it had a result (00:01:40)."""
    runs = expand(load_spec(EXAMPLES / "moons.toml"))[:1]
    run_id = runs[0].run_id
    sweep = _sweep(tmp_path, runs, [[run_id]])
    fake = FakeBackend(scripted={("1000", 0): JobRow("RUNNING", elapsed="01:30:00")})
    sweep.run_dir(run_id).mkdir(parents=True)
    layout.write_text(sweep.history(run_id), HISTORY)
    with locks.run_lock(sweep, run_id) as held:
        assert held is not None
        running = status.gather(sweep, backend_for=lambda name: fake).runs[0]
    layout.write_json(
        sweep.result(run_id),
        {"status": "COMPLETED", "started": "2026-11-27T10:00:00", "finished": "2026-11-27T10:01:40"},
    )
    fake.scripted = {("1000", 0): JobRow("COMPLETED", elapsed="01:31:00")}
    completed = status.gather(sweep, backend_for=lambda name: fake).runs[0]
    assert (running.state, completed.state) == ("RUNNING", "COMPLETED")
    assert running.elapsed <= "00:00:05" and completed.elapsed == "00:01:40"


def test_job_logs_are_named_by_submitit() -> None:
    sweep = layout.SweepDir(Path("/r/s"))
    assert sweep.job_log("123_4") == Path("/r/s/submitit/123_4_0_log.err")
    assert sweep.job_log("777", "out") == Path("/r/s/submitit/777_0_log.out")


def test_a_watch_wakes_when_the_runs_results_are_written_not_at_its_next_back_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpcjobs import watching

    sweep = layout.SweepDir(tmp_path / "s")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:  # the two runs end, one after the other, during the second second
            for run_id in ("a", "b"):
                layout.write_json(sweep.result(run_id), {"run_id": run_id, "status": "COMPLETED"})

    monkeypatch.setattr(watching.time, "sleep", sleep)
    watching.wait(sweep, ["a", "b"], 30.0)
    assert slept == [1.0, 1.0]
    # Nothing on disk tells when a search's promote job starts the next rung: the whole back-off.
    slept.clear()
    clock = iter(range(100))
    monkeypatch.setattr(watching.time, "monotonic", lambda: float(next(clock)))
    watching.wait(sweep, [], 5.0)
    assert len(slept) == 4
