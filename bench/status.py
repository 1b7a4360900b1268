"""Status benchmark: `hpcjobs status` on a 1,000-run sweep held pending on the lab Slurm, and on a
10,000-run synthetic manifest; wall time (in-process and as a fresh command) and sacct calls per refresh.

    sudo slurm/start.sh && python bench/status.py

Target: ≤ 0.5 s for 1,000 runs, one accounting call per refresh.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hpcjobs import backends, layout, manifest, status, sweep
from hpcjobs.spec import expand, parse_spec
from hpcjobs.vocab import Submission

HELD = """
name = "held"
[data]
source = "moons"
[sweep]
"model.hidden" = [[4], [8], [16], [32], [64], [4, 4], [8, 8], [16, 16], [32, 32], [64, 64]]
"train.learning_rate" = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
[slurm]
gpus_per_task = 0
cpus_per_task = 1
mem_gb = 1
trials_per_gpu = 1
runs_per_task = 1
additional = ["--hold"]
"""


def counting_sacct() -> list[list[str]]:
    """Wrap the one place hpcjobs runs commands, to count the scheduler calls."""
    calls: list[list[str]] = []
    real = backends._run

    def run(cmd: list[str], timeout: float = 60) -> str:
        calls.append(cmd)
        return real(cmd, timeout)

    backends._run = run  # type: ignore[assignment]
    return calls


def timed(fn: Callable[[], object], repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cli_seconds(sweep_dir: layout.SweepDir) -> float:
    """A fresh `hpcjobs status NAME` process: what a user waits for, Python start-up included."""
    cmd = [sys.executable, "-m", "hpcjobs", "status", str(sweep_dir.root)]
    return timed(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL), repeats=3)


def synthetic(root: Path, n_runs: int) -> layout.SweepDir:
    """A manifest of n_runs pending in arrays of 1,000 with job ids Slurm has never seen."""
    doc = {
        "name": "synthetic",
        "data": {"source": "moons"},
        "sweep": {"model.hidden": [[u] for u in range(1, n_runs // 10 + 1)], "seeds": list(range(10))},
    }
    spec = parse_spec(doc)
    runs = expand(spec)
    man = manifest.Manifest.new(spec.name, spec.backend, runs, spec.slurm)
    ids = [r.run_id for r in runs]
    for start in range(0, len(ids), 1000):
        man.submissions.append(
            Submission("slurm", str(9_000_000 + start), [[r] for r in ids[start : start + 1000]])
        )
    out = layout.SweepDir(root / spec.name)
    manifest.write(out, man)
    return out


def main() -> None:
    calls = counting_sacct()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "held.toml"
        path.write_text(HELD)
        outcome = sweep.submit(path, Path(tmp) / "results", backends.SlurmBackend(), backends.for_executor)
        held = outcome.sweep
        try:
            deadline = time.monotonic() + 30  # accounting learns of a new job a moment after sbatch
            while "SUBMITTED" in status.gather(held, backends.for_executor).counts:
                assert time.monotonic() < deadline, "the held array never reached accounting"
                time.sleep(1)
            calls.clear()
            in_process = timed(lambda: status.gather(held, backends.for_executor))
            per_refresh = len(calls) / 5
            states = status.gather(held, backends.for_executor).counts
            rows.append(
                ("1,000 runs held on the lab Slurm", in_process, cli_seconds(held), per_refresh, states)
            )
        finally:
            sweep.cancel(held, backends.for_executor)
        big = synthetic(Path(tmp), 10_000)
        calls.clear()
        in_process = timed(lambda: status.gather(big, backends.for_executor))
        per_refresh = len(calls) / 5
        states = status.gather(big, backends.for_executor).counts
        rows.append(("10,000 runs, synthetic manifest", in_process, cli_seconds(big), per_refresh, states))
    print(f"{'sweep':34} {'gather s':>9} {'command s':>10} {'sacct/refresh':>14}  states")
    for label, gather_s, cli_s, per, states in rows:
        print(f"{label:34} {gather_s:9.3f} {cli_s:10.3f} {per:14.1f}  {states}")


if __name__ == "__main__":
    main()
