"""A command that fails half-way leaves no job that nothing tracks and removes nothing it did not create
(issue 22, cases 1 and 2).

The Slurm case runs the real SlurmBackend and submitit against stand-in `sbatch`, `scancel` and `scontrol`
scripts on PATH: sbatch accepts two arrays, then refuses the third as a full queue does (MaxJobCount).
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcjobs import backends, layout, locks, manifest
from hpcjobs import sweep as sweeps
from hpcjobs.cli import cli
from hpcjobs.jobs import partial_failure
from hpcjobs.scheduler import BackendError
from hpcjobs.settings import SlurmSettings
from hpcjobs.slurm import JobRow
from hpcjobs.vocab import Submission

# Five runs, a task each: three arrays where MaxArraySize is 2.
SWEEP = """name = "{name}"
[data]
source = "moons"
[train]
epochs = 2
[slurm]
trials_per_gpu = 1
runs_per_task = 1
[sweep]
seeds = [0, 1, 2, 3, 4]
"""

REFUSED = "sbatch: error: Batch job submission failed: Resource temporarily unavailable"
# The stand-in Slurm: every call is logged; sbatch copies the manifest as it stands when called.
SBATCH = f"""#!/bin/sh
n=$(($(cat "$LOG/sbatch.count" 2>/dev/null || echo 0) + 1))
echo $n > "$LOG/sbatch.count"
cp "$SWEEP_DIR/manifest.json" "$LOG/manifest-at-sbatch-$n.json" 2>/dev/null
if [ $n -gt 2 ]; then echo "{REFUSED}" >&2; exit 1; fi
echo "Submitted batch job $((1000 + n))"
"""
TOOLS = {
    "sbatch": SBATCH,
    "scancel": '#!/bin/sh\necho "$@" >> "$LOG/scancel"\n',
    "scontrol": "#!/bin/sh\necho 'MaxArraySize            = 2'\n",
    "sinfo": "#!/bin/sh\nexit 1\n",  # no controller to ask about limits: packing uses the sweep's table
}


@pytest.fixture
def stand_in_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    log.mkdir()
    for name, text in TOOLS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(shutil.which('sh') or '/bin/sh').parent}")
    monkeypatch.setenv("LOG", str(log))
    monkeypatch.setenv("SWEEP_DIR", str(tmp_path / "results" / "many"))
    return log


def _sweep_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SWEEP.format(name=name))
    return path


def test_a_refused_third_array_cancels_the_two_submitted_and_leaves_nothing(
    tmp_path: Path, stand_in_slurm: Path
) -> None:
    results = tmp_path / "results"
    path = _sweep_file(tmp_path, "many")
    result = CliRunner().invoke(cli, ["submit", str(path), "--executor", "slurm", "--results", str(results)])
    assert result.exit_code == 1, result.output
    # (submitit echoes sbatch's stderr above the error: issue 22's smaller items)
    assert result.stderr.splitlines()[-1] == (
        "hpcjobs: error: submitted arrays 1001, 1002 were cancelled because array 3 failed: sbatch "
        f"refused the sweep: {REFUSED}"
    )
    assert (stand_in_slurm / "scancel").read_text() == "1001 1002\n"
    # recorded the moment sbatch returned it: the manifest named array 1001 when 1002 was submitted
    at_second = json.loads((stand_in_slurm / "manifest-at-sbatch-2.json").read_text())
    assert [s["job_id"] for s in at_second["submissions"]] == ["1001"]
    assert not results.exists()  # all cancelled: nothing recorded half-way, nothing left


@pytest.fixture
def fake() -> backends.FakeBackend:
    return backends.FakeBackend(array_size=1)


def test_arrays_that_cannot_be_cancelled_stay_recorded_and_the_error_says_how_to_reach_them(
    tmp_path: Path, fake: backends.FakeBackend
) -> None:
    fake.refuse_after, fake.cancel_error = 2, "Unable to contact slurm controller"
    with pytest.raises(BackendError) as err:
        sweeps.submit(_sweep_file(tmp_path, "many"), tmp_path / "results", fake, lambda executor: fake)
    assert str(err.value) == partial_failure(
        "many",
        "array",
        ["1000", "1001"],
        3,
        "sbatch refused the sweep: Resource temporarily unavailable",
        "'scancel' failed: Unable to contact slurm controller",
    )
    assert "stay recorded; stop them with `hpcjobs cancel many`" in str(err.value)
    sweep = layout.SweepDir(tmp_path / "results" / "many")
    assert [s.job_id for s in manifest.read(sweep).submissions] == ["1000", "1001"]
    fake.cancel_error = ""
    assert sweeps.cancel(sweep, lambda executor: fake) == ["1000", "1001"]


@pytest.fixture
def failed_sweep(tmp_path: Path, fake: backends.FakeBackend) -> layout.SweepDir:
    """The five runs submitted (five arrays of one task) and failed."""
    sweep = sweeps.submit(_sweep_file(tmp_path, "many"), tmp_path / "results", fake, lambda e: fake).sweep
    for run_id in manifest.read(sweep).run_ids:
        layout.write_json(sweep.result(run_id), {"run_id": run_id, "status": "FAILED", "error": "x"})
    fake.scripted = {(s.job_id, 0): JobRow("FAILED") for s in fake.submitted}
    return sweep


def test_a_resubmission_refused_half_way_cancels_its_arrays_and_changes_nothing(
    failed_sweep: layout.SweepDir, fake: backends.FakeBackend
) -> None:
    before = manifest.read(failed_sweep)
    fake.refuse_after = len(fake.submitted) + 2
    with pytest.raises(BackendError, match=r"^submitted arrays 1005, 1006 were cancelled because array 3"):
        sweeps.resubmit(failed_sweep, "failed", lambda executor: fake)
    assert fake.cancelled == ["1005", "1006"]
    assert manifest.read(failed_sweep) == before
    assert all(
        layout.read_json(failed_sweep.result(r))["status"] == "FAILED" for r in before.run_ids
    )  # no result set aside for an attempt that never happened


def test_resubmit_writes_a_run_folder_that_is_gone_again_from_the_manifest(
    failed_sweep: layout.SweepDir, fake: backends.FakeBackend
) -> None:
    run_id = manifest.read(failed_sweep).run_ids[0]
    config = layout.read_config(failed_sweep, run_id)
    shutil.rmtree(failed_sweep.run_dir(run_id))
    sweeps.resubmit(failed_sweep, "unfinished", lambda executor: fake)
    assert layout.read_config(failed_sweep, run_id) == config


class Gate(backends.FakeBackend):
    """Waits until the test lets it go: at `check`, then fails as an unreachable controller does, or at
    `submit`, then submits. The window in which another command runs."""

    def __init__(self, fail: bool) -> None:
        super().__init__()
        self.fail, self.inside, self.go = fail, threading.Event(), threading.Event()

    def _wait(self) -> None:
        self.inside.set()
        assert self.go.wait(timeout=30)

    def check(self) -> None:
        if self.fail:
            self._wait()
            raise BackendError("Slurm is not reachable: fake controller is down")

    def submit(
        self, sweep: layout.SweepDir, tasks: list[list[str]], settings: SlurmSettings
    ) -> Iterator[Submission]:
        self._wait()
        yield from super().submit(sweep, tasks, settings)


def _in_thread(call: Callable[[], object], done: list[object]) -> threading.Thread:
    def run() -> None:
        try:
            done.append(call())
        except Exception as exc:
            done.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_failed_first_submit_removes_only_what_it_created(tmp_path: Path) -> None:
    """Two sweeps first submitted at once into a new results folder: alpha fails (its controller is down)
    while beta is submitting. Beta's folder, files and jobs stay; alpha leaves nothing of its own."""
    results = tmp_path / "results"
    alpha, beta = Gate(fail=True), Gate(fail=False)
    failed: list[object] = []
    submitted: list[object] = []
    first = _in_thread(
        lambda: sweeps.submit(_sweep_file(tmp_path, "alpha"), results, alpha, lambda e: alpha), failed
    )
    try:
        assert alpha.inside.wait(timeout=30)  # alpha found no results folder, made it, holds its lock
        second = _in_thread(
            lambda: sweeps.submit(_sweep_file(tmp_path, "beta"), results, beta, lambda e: beta), submitted
        )
        assert beta.inside.wait(timeout=30)  # beta has written its sweep and is submitting it
        alpha.go.set()
        first.join()
    finally:
        alpha.go.set()
        beta.go.set()
    second.join()
    assert isinstance(failed[0], BackendError) and not isinstance(submitted[0], Exception), (
        failed,
        submitted,
    )
    sweep = layout.SweepDir(results / "beta")
    assert sweep.sweep_file.is_file()
    assert all(sweep.config(r).is_file() for r in manifest.read(sweep).run_ids)
    assert [s.job_id for s in manifest.read(sweep).submissions] == ["1000"]
    assert sorted(p.name for p in results.iterdir()) == [".beta.lock", "beta"]  # none of alpha's


def test_a_command_waiting_on_a_removed_lock_file_takes_the_new_one(tmp_path: Path) -> None:
    sweep = layout.SweepDir(tmp_path / "results" / "s")
    held, seen = threading.Event(), []

    def second() -> None:
        held.wait()
        with locks.sweep_lock(sweep):
            seen.append(sweep.lock_file.exists())

    thread = threading.Thread(target=second)
    thread.start()
    with locks.sweep_lock(sweep):
        held.set()
        locks.remove_lock_file(sweep, folder_too=True)
    thread.join()
    assert seen == [True]  # it holds the file on disk, which a third command would open too
