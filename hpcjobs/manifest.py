"""The manifest: which runs a sweep has and which job (array task) ran each of them.

It is the one file `status`, `resubmit` and `cancel` need to re-attach to a sweep days later.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import layout
from .settings import Run, SlurmSettings
from .vocab import Submission

VERSION = 1
PID_MAX = 2**22  # Linux's largest pid_max: a local job id is a worker's pid


@dataclass
class Manifest:
    name: str
    backend: str
    runs: list[Run]
    # The [slurm] table with packing resolved (packing.pack), as submit used it: resubmit and promote
    # submit alike with nothing but this folder.
    slurm: SlurmSettings
    submissions: list[Submission] = field(default_factory=list)
    # How submit packed the runs and why (packing.record): the estimate beside what the sweep took, and the
    # costs a halving search's later rungs are packed by. Absent from manifests before issue 20.
    packing: dict[str, Any] | None = None

    @classmethod
    def new(cls, name: str, backend: str, runs: list[Run], slurm: SlurmSettings) -> Manifest:
        return cls(name, backend, list(runs), slurm)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    def latest_job(self) -> dict[str, tuple[Submission, int]]:
        """For each run, the submission and task index that last took it."""
        out: dict[str, tuple[Submission, int]] = {}
        for sub in self.submissions:
            for index, run_ids in enumerate(sub.tasks):
                for run_id in run_ids:
                    out[run_id] = (sub, index)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "name": self.name,
            "backend": self.backend,
            "slurm": self.slurm.to_dict(),
            "runs": [r.to_dict() for r in self.runs],
            "submissions": [asdict(s) for s in self.submissions],
            **({"packing": self.packing} if self.packing else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        subs = [Submission(**s) for s in data.get("submissions", [])]
        runs = [Run.from_dict(r) for r in data["runs"]]
        packing = data.get("packing") if isinstance(data.get("packing"), dict) else None
        return cls(data["name"], data["backend"], runs, SlurmSettings.from_dict(data["slurm"]), subs, packing)


def read(sweep: layout.SweepDir) -> Manifest:
    """The sweep's manifest; LayoutError if it cannot be read or was written by a version of hpcjobs whose
    manifest this one does not know (reading on would guess at its fields)."""
    try:
        data = layout.read_json(sweep.manifest)
        if not isinstance(data, dict):
            raise layout.LayoutError(
                f"{sweep.manifest}: the manifest is a JSON {type(data).__name__}: expected an object "
                f"(the file was edited or damaged)"
            )
        version = data.get("version")
        if version != VERSION:
            raise layout.LayoutError(
                f"{sweep.manifest}: manifest version {version!r}: expected version {VERSION} "
                f"(written by another hpcjobs; use the hpcjobs that submitted this sweep)"
            )
        why = shape_problem(data)
        if why:
            raise layout.LayoutError(f"{sweep.manifest}: {why} (the file was edited or damaged)")
        return Manifest.from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise layout.LayoutError(f"{sweep.manifest}: unreadable manifest ({exc})") from None


def _fields(data: Any, types: dict[str, type | tuple[type, ...]], what: str) -> str:
    """'' if `data` is an object with each field of its type, else what is wrong."""
    if not isinstance(data, dict):
        return f"{what} is {type(data).__name__}: expected an object"
    for key, kind in types.items():
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            return f"{what} has '{key}' = {data.get(key)!r}: expected {getattr(kind, '__name__', 'text')}"
    return ""


def shape_problem(data: dict[str, Any]) -> str:
    """What makes a manifest unusable, '' if nothing: checked field by field before any is used. Pure."""
    why = _fields(data, {"name": str, "backend": str, "runs": list, "slurm": dict}, "the manifest")
    if why:
        return why
    first: dict[str, int] = {}
    for i, run in enumerate(data["runs"]):
        why = (
            _fields(run, {"run_id": str, "config_id": str, "seed": int, "settings": dict}, f"run {i}")
            or layout.name_problem(run["run_id"], f"run {i}'s run_id")
            or _fields(run["settings"].get("model"), {"hidden": list}, f"run {i}'s settings.model")
            or _fields(run["settings"].get("train"), {"epochs": int}, f"run {i}'s settings.train")
        )
        if why:
            return why
        if first.setdefault(run["run_id"], i) != i:
            return (
                f"runs {first[run['run_id']]} and {i} share the run_id {run['run_id']!r}: expected each once"
            )
    if not isinstance(data.get("submissions", []), list):
        return f"'submissions' is {data['submissions']!r}: expected a list"
    for i, sub in enumerate(data.get("submissions", [])):
        why = _fields(sub, {"executor": str, "job_id": str, "tasks": list}, f"submission {i}")
        if not why and not all(
            isinstance(t, list) and all(isinstance(r, str) for r in t) for t in sub["tasks"]
        ):
            tasks = sub["tasks"]
            why = f"submission {i} has 'tasks' = {tasks!r}: expected lists of run ids"
        why = why or _job_id_problem(sub, f"submission {i}")
        if why:
            return why
    return why


def _job_id_problem(sub: dict[str, Any], what: str) -> str:
    """A local worker's job id is its pid, which cancel signals: a number of a process, never 0 (which
    would signal cancel's own process group) nor text."""
    job_id = sub["job_id"]
    if sub["executor"] != "local" or (job_id.isascii() and job_id.isdigit() and 0 < int(job_id) <= PID_MAX):
        return ""
    return f"{what} has 'job_id' = {job_id!r}: expected a local worker's process id (1 to {PID_MAX})"


def left_out(sweep: layout.SweepDir, man: Manifest) -> str:
    """A line naming the runs that the sweep's run folders or jobs know and its manifest does not (an edit
    removed them: status and collect cannot show them), '' if none."""
    named = {run_id for sub in man.submissions for task in sub.tasks for run_id in task}
    gone = sorted((set(sweep.run_folders()) | named) - set(man.run_ids))
    if not gone:
        return ""
    shown = ", ".join(gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else "")
    return (
        f"{sweep.manifest}: expected every run of the sweep; received none for {len(gone)} that its "
        f"run folders or jobs name ({shown}): left out (was the manifest edited?)"
    )


def write(sweep: layout.SweepDir, manifest: Manifest) -> None:
    layout.write_json(sweep.manifest, manifest.to_json())


def _values(runs: list[Run]) -> dict[str, list[str]]:
    """Each setting (dotted) and the seed -> the values the runs take, in run order, as JSON text."""
    out: dict[str, list[str]] = {}
    for run in runs:
        pairs = [(f"{s}.{k}", v) for s, table in run.settings.to_dict().items() for k, v in table.items()]
        for key, value in [*pairs, ("seed", run.seed)]:
            text = json.dumps(value)
            if text not in out.setdefault(key, []):
                out[key].append(text)
    return out


def differences(old: Manifest, new: Manifest, most: int = 3) -> str:
    """What sets two sweeps apart, for people: 'data.source "moons" -> "digits"; seed 0, 1 -> 0, 1, 2'."""
    found = [f"backend {old.backend} -> {new.backend}"] if old.backend != new.backend else []
    before, after = _values(old.runs), _values(new.runs)
    for key in [*before, *(k for k in after if k not in before)]:
        a, b = before.get(key, []), after.get(key, [])
        if a != b:
            found.append(f"{key} {', '.join(a) or '(none)'} -> {', '.join(b) or '(none)'}")
    if not found:
        found = [f"{len(old.runs)} runs -> {len(new.runs)}"]
    return "; ".join(found[:most]) + (f"; and {len(found) - most} more" if len(found) > most else "")
