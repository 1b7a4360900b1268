"""The lesson's own way against hpcjobs: the 24 trainings of examples/digits_depth.toml (4 architectures × 2
learning rates × 3 seeds, 20 epochs, batch 128) as a plain Keras for-loop in one Python process, against
`hpcjobs submit examples/digits_depth.toml --executor local --wait`. Wall clock of each whole command, Python
start-up and imports included, sides alternating.

    python bench/digits_loop.py [--repeats 2] [--backend tensorflow|jax] [--plain-backend tensorflow|jax]

--plain-backend (default: --backend) runs the plain loop on another backend: the lesson's loop is
TensorFlow's, and issue 14 compares hpcjobs on JAX with it.

The plain loop is what a student writes (bench/plain_loop.py): scikit-learn's digits split 70/10/20 and
standardized, then for each setting a Sequential of Dense layers, compile(Adam(lr), categorical cross-entropy,
the sweep's metrics) and fit(validation_data=..., verbose=0), then evaluate on the test part.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "examples" / "digits_depth.toml"

PLAIN = str(Path(__file__).with_name("plain_loop.py"))


def sweep_file(folder: Path, backend: str) -> Path:
    """The example as it is, with the backend asked for."""
    text = SWEEP.read_text().replace('backend = "tensorflow"', f'backend = "{backend}"')
    path = folder / "digits_depth.toml"
    path.write_text(text)
    return path


def timed(command: list[str], backend: str) -> float:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": backend}
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--plain-backend", help="the plain loop's backend (default: --backend)")
    args = parser.parse_args()
    plain_backend = args.plain_backend or args.backend
    times: dict[str, list[float]] = {"plain loop": [], "hpcjobs local": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = sweep_file(Path(tmp), args.backend)
        runs = len(tomllib.loads(path.read_text())["sweep"]["seeds"]) * 8
        for repeat in range(args.repeats):
            results = Path(tmp) / f"results-{repeat}"
            times["plain loop"].append(timed([sys.executable, PLAIN, str(path)], plain_backend))
            submit = ["submit", str(path), "--executor", "local", "--wait", "--results", str(results)]
            times["hpcjobs local"].append(timed([sys.executable, "-m", "hpcjobs", *submit], args.backend))
            print(
                f"  repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True
            )
    plain = statistics.median(times["plain loop"])
    print(
        f"# digits_depth: {runs} trainings, plain loop on {plain_backend}, hpcjobs on {args.backend}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'side':16} {'median s':>9} {'all s':>20} {'plain ÷ this':>13}")
    for side, values in times.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        median = statistics.median(values)
        print(f"{side:16} {median:9.1f} {shown:>20} {plain / median:12.2f}×")


if __name__ == "__main__":
    main()
