"""A sweep on the local executor, then on the lab Slurm cluster: wall clocks, their ratio, the estimates.

Submit → done wall clock of each whole `hpcjobs submit --wait` command, their ratio, and the packing
planner's estimate beside each (the manifest's "packing", plus a halving search's later rungs' in
search.json), so the model can be checked (issue 20).

    python bench/slurm_vs_local.py [--sweep examples/digits_depth.toml] [--order local,slurm]
                                   [--repeats 1] [--results DIR]

Both sides write into one results folder (a fresh one under /tmp unless --results), each under its own
sweep name; a side's plan reads what the sides before it measured (its own executor's results first).
Needs the lab cluster for the Slurm side (sudo slurm/start.sh; `sinfo` answers when it is up). Run it on a
quiet machine: both sides share its cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "examples" / "digits_depth.toml"


def renamed(sweep: Path, folder: Path, name: str) -> Path:
    """The sweep file under another name (each side its own results folder), data paths kept absolute."""
    text = re.sub(r'^name = ".*"$', f'name = "{name}"', sweep.read_text(), count=1, flags=re.MULTILINE)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def side(executor: str, sweep: Path, results: Path, name: str) -> tuple[float, str, float | None]:
    """(wall s, submit's plan line, the planner's estimate s) of one `submit --wait`."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "PYTHONPATH": path}
    argv = [sys.executable, "-m", "hpcjobs", "submit", str(sweep), "--executor", executor, "--wait"]
    start = time.perf_counter()
    done = subprocess.run(
        [*argv, "--results", str(results)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=sweep.parent,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{executor}: submit failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    plan = next((line for line in done.stdout.splitlines() if " submitted " in line), "")
    try:
        packing = json.loads((results / name / "manifest.json").read_text()).get("packing") or {}
        estimate = float(packing["estimate"]["seconds"])
        search = results / name / "search.json"  # a halving search: each later rung's estimate too
        if search.is_file():
            estimate += sum(float(r["estimate_s"]) for r in json.loads(search.read_text())["rungs"][1:])
    except (OSError, ValueError, KeyError, TypeError):
        estimate = None
    return wall, plan, estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, default=SWEEP, help="the sweep file (default: %(default)s)")
    parser.add_argument("--order", default="local,slurm", help="executors, in order (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--results", type=Path, help="results folder (default: a new one under /tmp)")
    args = parser.parse_args()
    executors = [e.strip() for e in args.order.split(",") if e.strip()]
    if not executors or any(e not in ("local", "slurm") for e in executors):
        parser.error(f"--order: expected executors among local, slurm. Received: {args.order!r}")
    results = args.results or Path(tempfile.mkdtemp(prefix="hpcjobs-slurm-vs-local-"))
    base = re.search(r'^name = "(.*)"$', args.sweep.read_text(), re.MULTILINE)
    stem = base.group(1) if base else args.sweep.stem
    rows: list[tuple[str, float, float | None, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for executor in executors:
                name = f"{stem}-{executor}-{repeat}"
                wall, plan, estimate = side(
                    executor, renamed(args.sweep.resolve(), Path(tmp), name), results, name
                )
                rows.append((executor, wall, estimate, plan))
                shown = f"{estimate:.0f} s" if estimate is not None else "-"
                print(f"  {name}: {wall:.1f} s (estimate {shown})", flush=True)
    print(f"# {args.sweep.name}, {os.cpu_count()} CPUs, results in {results}")
    print(f"{'executor':9} {'wall s':>8} {'estimate s':>11} {'wall ÷ est.':>12}  plan")
    for executor, wall, estimate, plan in rows:
        est = f"{estimate:11.1f}" if estimate is not None else f"{'-':>11}"
        ratio = f"{wall / estimate:11.2f}×" if estimate else f"{'-':>12}"
        print(f"{executor:9} {wall:8.1f} {est} {ratio}  {plan.split(': ', 1)[-1]}")
    walls = {e: [w for x, w, _, _ in rows if x == e] for e in executors}
    if all(walls.get(e) for e in ("local", "slurm")):
        ratio = min(walls["slurm"]) / min(walls["local"])
        print(f"slurm ÷ local (best of each): {ratio:.2f}×")


if __name__ == "__main__":
    main()
