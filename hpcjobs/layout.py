"""The on-disk layout of a sweep: the only module that knows file names and paths.

results/<name>/
    sweep.toml        the sweep file as submitted
    manifest.json     runs, their settings, and every submission (job ids, which run is which task)
    search.json       a halving search: its rungs, what each trained and ranked, why it ended
    runs/<run id>/    config.json, history.csv (one row per epoch), result.json, backup/ (resume state)
    populations/      the resume state of runs trained together as one population (JAX)
    submitit/         submitit's pickles and job logs
    compile-cache/    JAX's persistent compilation cache, shared by every task of the sweep
    summary.csv, plots/
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import RunConfig
from .vocab import InputError, did_you_mean

RESULTS_ENV = "HPCJOBS_RESULTS"
MANIFEST = "manifest.json"


class LayoutError(InputError):
    """A results folder or sweep that cannot be found or used."""


def name_problem(name: str, what: str) -> str:
    """'' if `name` can be one folder's name inside a sweep (a run id, a sweep name), else what is wrong:
    a name with a slash or '..' would read or write outside the sweep. Pure."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        return f"{what} {name!r} is not a folder name: expected no '/', not '.' or '..'"
    if len(name.encode()) > 255:
        return f"{what} is {len(name.encode())} bytes long: expected at most 255 (a file name's limit)"
    return ""


def results_root(option: str | Path | None = None) -> Path:
    """--results, else $HPCJOBS_RESULTS, else ./results."""
    if option:
        return Path(option)
    return Path(os.environ.get(RESULTS_ENV) or "results")


@dataclass(frozen=True)
class SweepDir:
    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def sweep_file(self) -> Path:
        return self.root / "sweep.toml"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def search_state(self) -> Path:
        """A halving search's rungs and rankings (search.py)."""
        return self.root / "search.json"

    @property
    def promote_log(self) -> Path:
        """The output of the dependent `hpcjobs promote` jobs; %j is Slurm's job id."""
        return self.submitit_dir / "promote_%j.out"

    @property
    def submitit_dir(self) -> Path:
        return self.root / "submitit"

    @property
    def compile_cache(self) -> Path:
        """Compiled XLA programs: seeds of one architecture compile the same program in every task."""
        return self.root / "compile-cache"

    @property
    def summary_csv(self) -> Path:
        return self.root / "summary.csv"

    @property
    def export_script(self) -> Path:
        return self.root / "sbatch.sh"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    def plot(self, name: str) -> Path:
        """One figure of `collect --plot`, e.g. plot('learning_curves') -> plots/learning_curves.png."""
        return self.plots_dir / f"{name}.png"

    @property
    def lock_file(self) -> Path:
        """Beside the folder, not in it: a first submit locks before the folder exists, and a failed one
        removes the folder while another command may be waiting on the lock."""
        return self.root.parent / f".{self.name}.lock"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def config(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "config.json"

    def history(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "history.csv"

    def result(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "result.json"

    def previous_result(self, run_id: str) -> Path:
        """A failed attempt's result.json, kept when the run is submitted again."""
        return self.run_dir(run_id) / "result.previous.json"

    def run_lock(self, run_id: str) -> Path:
        """Held by the process training the run; it names that process (pid, start time, host)."""
        return self.run_dir(run_id) / "run.lock"

    def backup_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "backup"

    def population_checkpoint(self, run_ids: Sequence[str]) -> Path:
        """The stacked state of a population, named by its members: a requeued task finds its own."""
        digest = hashlib.sha256("\n".join(run_ids).encode()).hexdigest()[:16]
        return self.root / "populations" / f"{digest}.npz"

    def stderr_hint(self, run_id: str) -> Path:
        """Where the worker leaves the traceback of a run that raised."""
        return self.run_dir(run_id) / "traceback.txt"

    def job_log(self, job_name: str, stream: str = "err") -> Path:
        """submitit's log of one job: `123_4` for an array task, `123` for a plain job or local worker.
        submitit's JobPaths names the file; imported here only, when a log is read, so status stays light."""
        from .submititlib import JobPaths

        paths = JobPaths(self.submitit_dir, job_id=job_name, task_id=0)
        return Path(paths.stderr if stream == "err" else paths.stdout)

    def exists(self) -> bool:
        return self.manifest.is_file()


def sweep_dir(name_or_path: str | Path, results: str | Path | None = None) -> SweepDir:
    """A sweep by name (looked up in the results folder) or by its folder path."""
    candidate = Path(name_or_path)
    for part in candidate.parts:
        why = name_problem(part, "a sweep name") if part not in ("/", ".", "..") else ""
        if why:
            raise LayoutError(f"{why}; expected a sweep name or folder")
    for path in (candidate, results_root(results) / str(name_or_path)):
        if (path / MANIFEST).is_file():
            return SweepDir(path)
    if candidate.suffix == ".toml" or candidate.is_file():
        raise LayoutError(
            f"expected a sweep's name such as '{_sweep_name(candidate)}' (the name = of its sweep file) or "
            f"its results folder; received the sweep file path '{name_or_path}'"
        )
    hint = did_you_mean(str(name_or_path), [s.root.name for s in known_sweeps(results)])
    raise LayoutError(
        f"no sweep '{name_or_path}'{hint}: expected a sweep name in {results_root(results)}/ "
        f"or a folder holding {MANIFEST}"
    )


def _sweep_name(sweep_file: Path) -> str:
    """The name a sweep file gives its sweep, for a hint; 'moons' where it is no valid sweep file."""
    from .spec import load_spec  # spec reads settings, which this module's RunConfig comes from

    try:
        return load_spec(sweep_file).name
    except InputError:
        return "moons"


def known_sweeps(results: str | Path | None = None) -> list[SweepDir]:
    root = results_root(results)
    if not root.is_dir():
        return []
    return [SweepDir(p) for p in sorted(root.iterdir()) if (p / MANIFEST).is_file()]


def run_dir_problem(sweep: SweepDir, run_id: str) -> str:
    """'' if a run's folder is safe to write into, else why not: it, its parent or the files that are
    appended to in place (history, backup) are symbolic links (writes would land elsewhere), or it
    belongs to another user."""
    run_dir = sweep.run_dir(run_id)
    for path in (run_dir.parent, run_dir, sweep.history(run_id), sweep.backup_dir(run_id)):
        if path.is_symlink():
            return f"{path} is a symbolic link: expected the run's own folder and files"
    if run_dir.exists() and run_dir.stat().st_uid != os.getuid():
        return f"{run_dir} belongs to another user: expected a folder of yours"
    return ""


def check_output(path: Path) -> None:
    """A file the user names for output (collect --out) is a regular file to replace or a new path:
    never a folder, a device or a symbolic link, which an atomic replace would clobber."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        kind = (
            "a symbolic link" if path.is_symlink() else "a folder" if path.is_dir() else "not a regular file"
        )
        raise LayoutError(f"--out {path} is {kind}: expected a regular file to replace or a new path")


def make_private_dir(path: Path) -> None:
    """Sweep folders hold pickles that get executed: readable and writable by the user only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_json(path: Path, data: Any) -> None:
    """Atomic: readers see the old file or the new one, never half of it."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_bytes(path: Path, data: bytes) -> None:
    """Atomic, and an OSError (a full disk, a read-only folder) names the file, not its temporary twin."""
    tmp = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def read_json(path: Path) -> Any:
    with path.open() as f:
        return json.load(f)


def read_config(sweep: SweepDir, run_id: str) -> RunConfig:
    return RunConfig.from_dict(read_json(sweep.config(run_id)))


def write_config(sweep: SweepDir, config: RunConfig) -> None:
    write_json(sweep.config(config.run_id), config.to_dict())
