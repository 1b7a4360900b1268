"""Pure Slurm knowledge: sweep settings -> submitit/sbatch parameters; sacct/squeue/scontrol text -> facts.

Nothing here runs a command; `backends.py` does, and hands the text to these functions.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .settings import SlurmSettings

T = TypeVar("T")

# squeue's short state codes, spelled out as sacct prints them.
_SQUEUE_CODES = {
    "PD": "PENDING",
    "R": "RUNNING",
    "CG": "COMPLETING",
    "CF": "CONFIGURING",
    "S": "SUSPENDED",
    "RQ": "REQUEUED",
    "RH": "REQUEUE_HOLD",
    "PR": "PREEMPTED",
    "ST": "STOPPED",
}


@dataclass(frozen=True)
class JobRow:
    state: str  # first word of sacct's State ("CANCELLED by 0" -> CANCELLED)
    exit_code: str = ""
    elapsed: str = ""
    reason: str = ""


SIGNAL_DELAY_S = 120  # USR2 this long before the time limit: checkpoint and requeue
MIN_TIME_S = SIGNAL_DELAY_S + 180  # a job must have time to start and train before that signal


def time_to_minutes(text: str) -> int:
    """Slurm's time formats (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) in whole minutes, rounded up.

    "0" stays 0, which Slurm reads as no limit.
    """
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        hours, minutes, seconds = [*parts, 0, 0][:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        hours, (minutes, seconds) = 0, [*parts, 0][:2]
    total_s = ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds
    return -(-total_s // 60)


def executor_parameters(slurm: SlurmSettings, job_name: str) -> dict[str, Any]:
    """submitit SlurmExecutor.update_parameters keywords for the sweep file's [slurm] table."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": time_to_minutes(slurm.time),
        "cpus_per_task": slurm.cpus_per_task,
        "mem": f"{int(slurm.mem_gb * 1024)}M",
        "ntasks_per_node": 1,
        "array_parallelism": slurm.array_parallelism,
        # USR2 ahead of the time limit lets a run checkpoint and requeue instead of dying mid-epoch.
        "signal_delay_s": SIGNAL_DELAY_S,
    }
    additional: dict[str, Any] = {}
    gpus = slurm.gpus_per_task
    if gpus:
        if slurm.gpu_request == "gpus-per-node":
            params["gpus_per_node"] = gpus
        elif slurm.gpu_request == "gres":
            params["gres"] = f"gpu:{gpus}"
        else:
            additional["gpus"] = gpus
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(slurm, key):
            params[key] = getattr(slurm, key)
    for option in slurm.additional:
        name, _, value = option.lstrip("-").partition("=")
        additional[name.replace("-", "_")] = value if value else True
    if additional:
        params["additional_parameters"] = additional
    return params


def trials_per_gpu(params: int) -> int:
    """Trainings sharing one GPU for a model of `params` weights. The lesson MLP (235,146 weights) on one
    H200 gave the most trainings per hour with 4 processes: 4.95× one process per run, 8 processes 3.96×
    (the team's shared measurements, 28 Nov 2026). Larger models leave a GPU less room."""
    return 4 if params < 1_000_000 else 2 if params < 10_000_000 else 1


def group(run_ids: Sequence[str], settings: SlurmSettings) -> list[list[str]]:
    """Runs per array task: trials_per_gpu × runs_per_task of them (settings resolved by packing.pack)."""
    return list(chunks(run_ids, settings.task_size))


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Split a sweep's tasks into arrays no larger than the cluster's MaxArraySize."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def max_array_size(show_config: str) -> int:
    """MaxArraySize from `scontrol show config`; array indices go up to MaxArraySize - 1."""
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", show_config, re.MULTILINE)
    return int(match.group(1)) if match else 1001


def _task_indices(spec: str) -> list[int]:
    """'4' -> [4]; '[0-3,7%2]' -> [0, 1, 2, 3, 7]."""
    spec = spec.strip("[]").split("%")[0]
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _split_job_id(job_id: str) -> tuple[str, list[int]] | None:
    """'123_4' -> ('123', [4]); '123_[0-2]' -> ('123', [0, 1, 2]); '123' -> ('123', [0]); steps -> None."""
    match = re.fullmatch(r"(\d+)(?:_(\d+|\[[\d,\-%]+\]))?", job_id)
    if match is None:
        return None
    return match.group(1), _task_indices(match.group(2) or "0")


SACCT_FORMAT = "JobID,State,ExitCode,Elapsed"


def job_name(sweep_name: str) -> str:
    """What a sweep's arrays are called in the queue: `cancel` reaches only jobs of that name."""
    return f"hpcjobs-{sweep_name}"


# Who owns a job and what it is called, from sacct (-P) and squeue: 'JOBID|USER|NAME' lines.
OWNER_SACCT_FORMAT = "JobID,User,JobName"
OWNER_SQUEUE_FORMAT = "%F|%u|%j"


def owned_jobs(text: str, user: str, name: str) -> set[str]:
    """The array (or plain) job ids of the 'JOBID|USER|NAME' lines that belong to `user` and are named
    `name`; an array's tasks (123_4, 123_[5-9]) count for the array. Pure."""
    found = set()
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[1:] == [user, name]:
            found.add(parts[0].split("_")[0])
    return found


def parse_sacct(text: str) -> dict[tuple[str, int], JobRow]:
    """`sacct -X -P -n --format=JobID,State,ExitCode,Elapsed` -> (array job id, task index) -> row."""
    rows: dict[tuple[str, int], JobRow] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 4 or (parsed := _split_job_id(fields[0])) is None:
            continue
        job, tasks = parsed
        state = fields[1].split()[0] if fields[1].strip() else "UNKNOWN"
        for task in tasks:
            rows[(job, task)] = JobRow(state, fields[2], fields[3])
    return rows


SQUEUE_FORMAT = "%i|%t|%r"


def parse_squeue(text: str) -> dict[tuple[str, int], JobRow]:
    """`squeue -h -r -o '%i|%t|%r'` -> (array job id, task index) -> row, states spelled out as sacct does."""
    rows: dict[tuple[str, int], JobRow] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 2 or (parsed := _split_job_id(fields[0])) is None:
            continue
        job, tasks = parsed
        state = _SQUEUE_CODES.get(fields[1], fields[1])
        for task in tasks:
            rows[(job, task)] = JobRow(state, reason=fields[2] if len(fields) > 2 else "")
    return rows


def sbatch_script(
    folder: str, params: dict[str, Any], n_tasks: int, python: str, command: str = "", use_srun: bool = True
) -> str:
    """The sbatch script for `n_tasks` tasks: submitit's own (for --dry-run) unless `command` is given.

    submitit has no public function for this text; pyproject.toml pins the minor release whose private one
    this calls, and the golden-file test says at once if it changes."""
    from .submititlib import _make_sbatch_string

    command = command or f"{python} -u -m submitit.core._submit {shlex.quote(folder)}"
    return str(
        _make_sbatch_string(
            command=command,
            folder=folder,
            map_count=n_tasks if n_tasks > 1 else None,
            use_srun=use_srun,
            **params,
        )
    )


def export_script(sweep_root: str, settings: SlurmSettings, job_name: str, n_runs: int, python: str) -> str:
    """A plain array script, no pickles: task i trains the sweep's run number i through `hpcjobs run`.

    Requeues on a time limit like the submitit path: `srun` makes the run a job step, which is what
    Slurm's USR2 (sent 120 s ahead, without B:) reaches, and `hpcjobs run` answers it by requeueing the
    task, which resumes from the run's last epoch backup."""
    command = (
        f"{shlex.quote(python)} -m hpcjobs run {shlex.quote(sweep_root)} "
        f'--index "${{SLURM_ARRAY_TASK_ID:-0}}"'
    )
    folder = f"{sweep_root}/submitit"
    header = (
        f"# Written by `hpcjobs export-sbatch`: {n_runs} runs, one per array task. Submit: sbatch <file>\n"
    )
    params = executor_parameters(settings, job_name)
    params["additional_parameters"] = {"requeue": True, **params.get("additional_parameters", {})}
    script = sbatch_script(folder, {**params, "wckey": None}, n_runs, python, command=command)
    # submitit's own marker: these tasks are not submitit's, and its job environment must not think so.
    script = script.replace("export SUBMITIT_EXECUTOR=slurm\n", "")
    return script.replace("#!/bin/bash\n", "#!/bin/bash\n" + header, 1)


# The dependent job that advances a search: it reads results and calls sbatch, so it needs little.
PROMOTE_RESOURCES = ("--time=00:10:00", "--cpus-per-task=1", "--mem=2G")


def promote_argv(
    sweep_root: str, settings: SlurmSettings, after: Sequence[str], python: str, log: str
) -> list[str]:
    """sbatch arguments of the small job that runs `hpcjobs promote` once the arrays `after` have ended,
    however they ended (afterany): promote itself tells a finished rung from a broken one."""
    argv = [
        "sbatch",
        "--parsable",
        f"--dependency=afterany:{':'.join(after)}",
        f"--job-name=hpcjobs-promote-{sweep_root.rstrip('/').rsplit('/', 1)[-1]}",
        *PROMOTE_RESOURCES,
        f"--output={log}",
    ]
    argv += [
        f"--{key}={getattr(settings, key)}"
        for key in ("partition", "account", "qos")
        if getattr(settings, key)
    ]
    return [*argv, "--wrap", f"exec {shlex.quote(python)} -m hpcjobs promote {shlex.quote(sweep_root)}"]


def parse_sbatch_parsable(text: str) -> str:
    """`sbatch --parsable` prints `123` or `123;cluster`: the job id."""
    return text.strip().splitlines()[-1].split(";")[0]


# --- what the cluster lets a user run at once (packing's slots) ------------------------------------------

SINFO_FORMAT = "%P|%n|%G|%c|%t"  # `sinfo -h -N -o`: a line per node and partition
# Node states whose GPUs take no new job: down, drained or draining, failing, under maintenance, unknown.
_UNUSABLE = ("down", "drain", "drng", "fail", "maint", "unk", "inval", "resv", "boot", "powered", "npc")


@dataclass(frozen=True)
class Limits:
    """What one user may run at once in a partition, each None where it could not be read."""

    partition: str = ""  # as sinfo names it; the cluster's default when the sweep names none
    gpus: int | None = None  # the partition's GPUs on nodes that take jobs
    user_gpus: int | None = None  # the user's QOS MaxTRESPerUser or association GrpTRES gres/gpu
    max_jobs: int | None = None  # the user's running jobs at most (association MaxJobs, QOS MaxJobsPerUser)
    pending: int | None = None  # jobs pending in the partition now
    cpus: int | None = None  # the partition's CPUs on nodes that take jobs


def gres_gpus(gres: str) -> int:
    """GPUs in sinfo's %G: 'gpu:2', 'gpu:a100:4(S:0-1)', 'gpu:tesla:2,mps:200', '(null)'."""
    total = 0
    for item in re.split(r",(?![^(]*\))", gres):
        fields = item.split("(")[0].split(":")
        if fields[0] == "gpu" and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def parse_sinfo(text: str, partition: str) -> tuple[str, int, int] | None:
    """(partition, its GPUs, its CPUs on nodes that take jobs) from `sinfo -h -N -o SINFO_FORMAT`; the
    partition marked '*' (the default) when `partition` is empty. None when sinfo does not list it."""
    found, gpus, cpus = "", 0, 0
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 5:
            continue
        name = fields[0].rstrip("*")
        if name != partition and not (not partition and fields[0].endswith("*")):
            continue
        found = name
        state = fields[4]
        if not state.endswith("*") and not state.startswith(_UNUSABLE):  # '*': not responding
            gpus += gres_gpus(fields[2])
            cpus += int(fields[3]) if fields[3].isdigit() else 0
    return (found, gpus, cpus) if found else None


def tres_gpus(tres: str) -> int | None:
    """GPUs in a TRES limit: 'cpu=8,gres/gpu=4' -> 4; typed only ('gres/gpu:a100=2') -> their sum;
    no GPU limit -> None."""
    plain, typed = None, None
    for item in tres.split(","):
        key, _, value = item.partition("=")
        if value.isdigit() and key == "gres/gpu":
            plain = int(value)
        elif value.isdigit() and key.startswith("gres/gpu:"):
            typed = (typed or 0) + int(value)
    return plain if plain is not None else typed


ASSOC_FORMAT = "Partition,DefaultQOS,MaxJobs,GrpTRES"
QOS_FORMAT = "Name,MaxTRESPerUser,MaxJobsPerUser"


def parse_assoc(text: str, partition: str) -> tuple[str, int | None, int | None]:
    """(default QOS, MaxJobs, GrpTRES GPUs) of the user's associations for this partition (a row with no
    partition holds for all), from `sacctmgr -n -P show assoc where user=U format=ASSOC_FORMAT`; the
    tightest where several apply."""
    qos: dict[str, str] = {}
    jobs, gpus = [], []
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 4 or fields[0] not in ("", partition):
            continue
        qos.setdefault(fields[0], fields[1])
        jobs += [int(fields[2])] if fields[2].isdigit() else []
        gpus += [g] if (g := tres_gpus(fields[3])) is not None else []
    # The partition's own association names its default QOS before the one for all partitions.
    return qos.get(partition) or qos.get("", ""), min(jobs, default=None), min(gpus, default=None)


def parse_qos(text: str, name: str) -> tuple[int | None, int | None]:
    """(MaxTRESPerUser GPUs, MaxJobsPerUser) of QOS `name` from `sacctmgr -n -P show qos
    format=QOS_FORMAT`."""
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) >= 3 and fields[0] == name:
            return tres_gpus(fields[1]), int(fields[2]) if fields[2].isdigit() else None
    return None, None


def limits(
    partition: str, sinfo: str | None, assoc: str | None, qos_table: str | None, qos: str, squeue: str | None
) -> Limits:
    """Limits from the four commands' text (None: the command could not be run): the tightest of the
    association's and the QOS's (the sweep's QOS, else the association's default, else 'normal')."""
    part = parse_sinfo(sinfo, partition) if sinfo is not None else None
    name, gpus, cpus = part if part else (partition, None, None)
    default_qos, assoc_jobs, assoc_gpus = parse_assoc(assoc or "", name)
    qos_gpus, qos_jobs = parse_qos(qos_table or "", qos or default_qos or "normal")
    pending = None if squeue is None else sum(1 for line in squeue.splitlines() if line.strip())
    return Limits(name, gpus, _least(assoc_gpus, qos_gpus), _least(assoc_jobs, qos_jobs), pending, cpus)


def _least(*values: int | None) -> int | None:
    return min((v for v in values if v is not None), default=None)
