"""Peak memory of checking a user's .npz at submit: `logindata.check_file` (streams x in chunks) next to
`data.load` (what submit did before: the whole archive expanded in memory), on one compressed archive.

    python bench/data_check.py [--mib 512]
"""

from __future__ import annotations

import argparse
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

from hpcjobs import data, logindata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mib", type=int, default=512, help="size of x expanded, in MiB (float32, 16 columns)"
    )
    args = parser.parse_args()
    rows = args.mib * 2**20 // 64
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.npz"
        x = np.zeros((rows, 16), dtype=np.float32)
        np.savez_compressed(path, x=x, y=np.arange(rows) % 2)
        del x
        print(f"archive {path.stat().st_size / 2**20:.1f} MiB on disk, x {args.mib} MiB expanded")
        peaks = {}
        for name, check in (("data.load", data.load), ("logindata.check_file", logindata.check_file)):
            tracemalloc.start()
            check(str(path))
            peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(f"{name:20} peak {peaks[name]:7.0f} MiB")
        print(f"ratio load / check_file: {peaks['data.load'] / peaks['logindata.check_file']:.1f}x")


if __name__ == "__main__":
    main()
