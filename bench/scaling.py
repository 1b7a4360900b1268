"""What a seed's scaling costs (`splits.scaling`, the train rows' moments summed directly), beside what the
derivation it replaced paid per seed: the moments of the rows not trained on (subtracted from all rows'
moments, made once per source; that cancelled, and left features constant in the train rows a std of ~1e-8).
MNIST-sized float32 data, 0-255 with mostly-zero pixels, 80/20 split; best of --repeats.

    python bench/scaling.py [--rows 60000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from hpcjobs import splits


def best_of(repeats: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, (args.rows, 784)) * (rng.random((args.rows, 784)) < 0.2)).astype(np.float32)
    train, val, test = splits.split_indices(args.rows, 0.1, 0.1, seed=0)
    others = np.concatenate([val, test])
    direct = best_of(args.repeats, lambda: splits.scaling(x, train, "standard"))
    derived = best_of(args.repeats, lambda: splits.moments(x, others))
    print(f"{args.rows} x 784, {len(train)} train rows, best of {args.repeats}")
    print(f"scaling, train rows summed directly      {direct:6.3f} s")
    print(f"the old derivation's per-seed part       {derived:6.3f} s")
    print(f"ratio direct / old per-seed part: {direct / derived:.1f}x")


if __name__ == "__main__":
    main()
