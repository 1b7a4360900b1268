"""This machine's GPUs and how many worker processes the local executor runs on them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from . import slurm


def visible_gpus(environ: dict[str, str], nvidia_smi_list: str | None) -> list[int]:
    """The GPUs this machine lets a process use, by index: CUDA_VISIBLE_DEVICES where set ("" or "-1":
    none; ids that are not numbers, e.g. UUIDs, count by position), else the lines of `nvidia-smi -L`.
    Pure."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        ids = [i.strip() for i in environ["CUDA_VISIBLE_DEVICES"].split(",") if i.strip()]
        ids = ids[: ids.index("-1")] if "-1" in ids else ids
        return [int(i) for i in ids] if all(i.isdigit() for i in ids) else list(range(len(ids)))
    lines = (nvidia_smi_list or "").splitlines()
    return list(range(sum(1 for line in lines if line.startswith("GPU "))))


def local_workers(cores: int, gpus: Sequence[int]) -> tuple[int, list[int]]:
    """Worker processes on this machine and the GPUs they are shown. Without a GPU, one process per core.
    With one, processes share the first GPU (no preallocation): as many as slurm.trials_per_gpu gives the
    lesson MLP (4 beat 8 on an H200), never more than the cores that feed them. Pure."""
    if not gpus:
        return cores, []
    return min(cores, slurm.trials_per_gpu(0)), [gpus[0]]


def nvidia_smi_list() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
