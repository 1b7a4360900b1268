"""The compute-node side: a run that raises is recorded, never lost; finished runs are not trained twice."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from hpcjobs import backends, layout, manifest, status, vocab, worker
from hpcjobs.spec import expand, parse_spec
from hpcjobs.vocab import Submission


def test_out_of_memory_errors_are_told_apart_from_other_failures(tmp_path: Path) -> None:
    tb = tmp_path / "traceback.txt"
    gpu = RuntimeError("ResourceExhaustedError: OOM when allocating tensor with shape[4096,4096]")
    assert worker.failure_result("r", gpu, tb)["status"] == "OUT_OF_MEMORY"
    assert worker.failure_result("r", MemoryError(), tb)["hint"] == vocab.OOM_HINT
    other = worker.failure_result("r", ValueError("bad\nthings happened"), tb)
    assert (other["status"], other["error"], other["hint"]) == ("FAILED", "things happened", "")
    assert other["traceback"] == str(tb)


def test_jax_tasks_of_a_sweep_share_one_compilation_cache_in_its_folder(tmp_path: Path) -> None:
    sweep = layout.SweepDir(tmp_path / "s")
    env = worker.compile_cache_env(sweep, "jax")
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(sweep.compile_cache.resolve())
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"  # the lesson MLP compiles in < 1 s on CPU
    assert worker.compile_cache_env(sweep, "tensorflow") == {}


def _sweep(root: Path, source: str, epochs: int = 1) -> tuple[layout.SweepDir, list[str]]:
    spec = parse_spec(
        {"name": "w", "data": {"source": source}, "train": {"epochs": epochs}, "sweep": {"seeds": [0, 1]}}
    )
    sweep = layout.SweepDir(root / "w")
    runs = expand(spec)
    for run in runs:
        layout.write_config(sweep, run.config(spec.name, spec.backend))
    man = manifest.Manifest.new(spec.name, spec.backend, runs, spec.slurm)
    man.submissions.append(Submission("fake", "1000", [[r.run_id for r in runs]]))
    manifest.write(sweep, man)
    return sweep, [r.run_id for r in runs]


def test_a_task_sharing_its_gpu_starts_its_lanes_through_the_worker_entry_point(tmp_path: Path) -> None:
    """Finished runs are skipped, so the lanes run without Keras; each prints its runs' states."""
    sweep, ids = _sweep(tmp_path, "moons")
    for run_id in ids:
        layout.write_json(sweep.result(run_id), {"status": "DIVERGED"})
    assert worker.Task(str(sweep.root), tuple(ids), parallel=2)() == dict.fromkeys(ids, "DIVERGED")
    lane = subprocess.run(
        [sys.executable, *worker.LANE_COMMAND, str(sweep.root), ids[0]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (lane.returncode, lane.stdout) == (0, f"{ids[0]}: DIVERGED\n")


def test_the_worker_entry_point_imports_neither_click_nor_rich(tmp_path: Path) -> None:
    sweep, ids = _sweep(tmp_path, "moons")
    layout.write_json(sweep.result(ids[0]), {"status": "COMPLETED"})
    code = (
        "import sys; from hpcjobs.worker import main; main(sys.argv[1:]); "
        "print(sorted(m for m in ('click', 'rich', 'keras') if m in sys.modules))"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code, str(sweep.root), ids[0]], capture_output=True, text=True
    )
    assert probe.stdout.splitlines()[-1] == "[]", probe.stderr


@pytest.mark.keras
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_huge_learning_rate_is_diverged_on_every_backend(tmp_path: Path, backend: str) -> None:
    """On JAX the clipped loss saturates instead of becoming NaN: the loss bound makes it DIVERGED too.
    Each backend in its own process, as on a node (Keras reads KERAS_BACKEND once)."""
    spec = parse_spec(
        {
            "name": "d",
            "backend": backend,
            "data": {"source": "moons"},
            "train": {"epochs": 3, "learning_rate": 1e10},
        }
    )
    sweep = layout.SweepDir(tmp_path / "d")
    (run,) = expand(spec)
    layout.write_config(sweep, run.config(spec.name, spec.backend))
    lane = subprocess.run(
        [sys.executable, *worker.LANE_COMMAND, str(sweep.root), run.run_id],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert lane.stdout.splitlines()[-1] == f"{run.run_id}: DIVERGED", lane.stderr[-2000:]
    # TensorFlow: NaN in the first epoch; JAX: past the bound and not coming down in the second.
    assert layout.read_json(sweep.result(run.run_id))["diverged_epoch"] == (
        1 if backend == "tensorflow" else 2
    )


@pytest.mark.keras
def test_an_exception_becomes_a_failed_result_and_the_task_goes_on(tmp_path: Path) -> None:
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.normal(size=(64, 2)), y=np.arange(64) % 2)
    sweep, (first, second) = _sweep(tmp_path, str(data))
    cfg = layout.read_json(sweep.config(first))
    cfg["data"]["source"] = str(tmp_path / "gone.npz")  # the file vanished after submission
    layout.write_json(sweep.config(first), cfg)

    assert worker.Task(str(sweep.root), (first, second))() == {first: "FAILED", second: "COMPLETED"}
    result = layout.read_json(sweep.result(first))
    assert result["error"].endswith("gone.npz: file not found")
    assert "Traceback" in Path(result["traceback"]).read_text()

    fake = backends.FakeBackend(scripted={("1000", 0): backends.JobRow("COMPLETED")})
    st = {r.run_id: r for r in status.gather(sweep, lambda _: fake).runs}
    assert st[first].state == "FAILED" and "gone.npz: file not found" in st[first].note
    assert "traceback: " in st[first].note
    assert (st[second].state, st[second].epochs_done) == ("COMPLETED", 1)

    # A requeued task skips what is finished: the completed run's files are left as they are.
    before = sweep.history(second).stat().st_mtime_ns
    assert worker.run_one(sweep, second) == "COMPLETED"
    assert sweep.history(second).stat().st_mtime_ns == before


@pytest.mark.keras
def test_submit_through_the_fake_backend_runs_each_task_as_a_node_would(tmp_path: Path) -> None:
    from hpcjobs import sweep as sweeps

    path = tmp_path / "s.toml"
    path.write_text('name = "s"\n[data]\nsource = "moons"\n[train]\nepochs = 2\n[sweep]\nseeds = [0, 1]\n')
    fake = backends.FakeBackend(run=True)
    outcome = sweeps.submit(path, tmp_path / "r", fake, lambda _: fake)
    # Two runs fit the array's parallel slots: auto gives each its own task, nothing is packed.
    assert [len(t) for t in outcome.tasks] == [1, 1]
    fake.scripted = {("1000", i): backends.JobRow("COMPLETED") for i in range(2)}
    st = status.gather(outcome.sweep, lambda _: fake)
    assert [(r.state, r.epochs_done) for r in st.runs] == [("COMPLETED", 2)] * 2


def test_a_retry_that_finishes_removes_the_traceback_of_the_attempt_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep, (run_id, _) = _sweep(tmp_path, "moons")
    attempts = iter([RuntimeError("the node's disk went away"), None])

    def train_run(sweep: layout.SweepDir, run_id: str, since: float) -> dict[str, str]:
        failure = next(attempts)
        if failure:
            raise failure
        layout.write_json(sweep.result(run_id), {"run_id": run_id, "status": "COMPLETED"})
        return {"status": "COMPLETED"}

    fake_train = types.ModuleType("hpcjobs.train")
    fake_train.train_run = train_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hpcjobs.train", fake_train)
    monkeypatch.setattr("hpcjobs.train", fake_train, raising=False)
    assert worker.run_one(sweep, run_id) == "FAILED"
    assert "the node's disk went away" in sweep.stderr_hint(run_id).read_text()
    sweep.result(run_id).replace(sweep.previous_result(run_id))  # as resubmit sets it aside
    assert worker.run_one(sweep, run_id) == "COMPLETED"
    assert not sweep.stderr_hint(run_id).exists()


def test_a_lane_stopped_by_sigint_leaves_its_unfinished_runs_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hpcjobs cancel` stops a local task with SIGINT: its runs showed FAILED, "the task ended without
    writing this run's result". The run that had finished stays as it is."""
    sweep, (first, second) = _sweep(tmp_path, "moons")
    layout.write_json(sweep.result(first), {"run_id": first, "status": "COMPLETED"})

    def train_run(sweep: layout.SweepDir, run_id: str, since: float) -> dict[str, str]:
        raise KeyboardInterrupt

    fake_train = types.ModuleType("hpcjobs.train")
    fake_train.train_run = train_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hpcjobs.train", fake_train)
    monkeypatch.setattr("hpcjobs.train", fake_train, raising=False)
    with pytest.raises(KeyboardInterrupt):
        worker.run_lane(sweep, [first, second])
    ended = backends.FakeBackend(scripted={("1000", 0): backends.JobRow("COMPLETED")})
    states = {r.run_id: r.state for r in status.gather(sweep, lambda _: ended).runs}
    assert states == {first: "COMPLETED", second: "CANCELLED"}
