"""`status` exits 1 whenever the scheduler does not answer (README), with a warning: also when accounting
answers for a controller that is down, which would otherwise show PENDING forever."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcjobs import backends
from hpcjobs.cli import cli
from hpcjobs.scheduler import BackendError
from hpcjobs.vocab import UNREACHABLE, Submission

from .test_validation import make_sweep

SUB = [Submission("slurm", "77", [["a"], ["b"]])]


def _scheduler(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str | None]) -> list[str]:
    """Scripted Slurm commands: their output, or None for one that fails. Returns the commands run."""
    calls: list[str] = []

    def run(cmd: list[str], timeout: float = 60) -> str:
        calls.append(cmd[0])
        answer = answers[cmd[0]]
        if answer is None:
            raise BackendError(f"'{cmd[0]}' failed: Unable to contact slurm controller (connect failure)")
        return answer

    monkeypatch.setattr(backends, "_run", run)
    return calls


def test_accounting_says_pending_but_the_controller_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _scheduler(monkeypatch, {"sacct": "77_[0-1]|PENDING|0:0|00:00:00\n", "squeue": None})
    rows, warning = backends.SlurmBackend().states(SUB)
    assert {r.state for r in rows.values()} == {"PENDING"}
    assert warning.startswith(f"{UNREACHABLE}: the controller does not answer")
    assert calls == ["sacct", "squeue"]


def test_finished_jobs_need_no_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _scheduler(monkeypatch, {"sacct": "77_[0-1]|COMPLETED|0:0|00:00:09\n", "squeue": None})
    assert backends.SlurmBackend().states(SUB)[1] == ""
    assert calls == ["sacct"]


def test_accounting_down_and_controller_up_is_a_warning_only(monkeypatch: pytest.MonkeyPatch) -> None:
    _scheduler(monkeypatch, {"sacct": None, "squeue": "77_0|RUNNING|None|00:00:05\n"})
    warning = backends.SlurmBackend().states(SUB)[1]
    assert warning.startswith("accounting unavailable") and UNREACHABLE not in warning


@pytest.mark.parametrize("name", [["moons"], []])
def test_status_exits_1_with_a_warning_when_the_scheduler_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: list[str]
) -> None:
    sweep, ids = make_sweep(tmp_path)
    sweep.result(ids[0]).unlink()
    monkeypatch.setattr(backends, "for_executor", lambda executor: backends.FakeBackend(down=True))
    result = CliRunner().invoke(cli, ["status", *name, "--results", str(sweep.root.parent), "--wide"])
    assert result.exit_code == 1
    assert "moons" in result.stdout  # the table is still shown
    assert UNREACHABLE in result.stdout + result.stderr


def test_status_exits_0_when_the_scheduler_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep, _ = make_sweep(tmp_path)
    monkeypatch.setattr(backends, "for_executor", lambda executor: backends.FakeBackend())
    assert CliRunner().invoke(cli, ["status", "moons", "--results", str(sweep.root.parent)]).exit_code == 0


def test_a_finished_sweep_reads_from_disk_with_the_controller_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep, _ = make_sweep(tmp_path)  # every run has its result.json: no state depends on the controller
    monkeypatch.setattr(backends, "for_executor", lambda executor: backends.FakeBackend(down=True))
    result = CliRunner().invoke(cli, ["status", "moons", "--results", str(sweep.root.parent), "--wide"])
    assert result.exit_code == 0
    assert UNREACHABLE in result.stdout + result.stderr  # still said
