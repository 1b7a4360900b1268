"""Where tasks run: Slurm through submitit, local worker processes through submitit, or a fake for tests.

A backend submits tasks (lists of run ids) and reports scheduler states; it knows nothing about Keras,
histories or tables. Every subprocess call hpcjobs makes lives here.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import locks, packplan, slurm
from .layout import SweepDir
from .locks import after_sweep, process_start
from .machine import local_workers, nvidia_smi_list, visible_gpus
from .scheduler import Backend, BackendError, States
from .settings import SlurmSettings
from .slurm import JobRow
from .vocab import ACTIVE, UNREACHABLE, RunState, Submission, lanes
from .worker import SHARED_GPU_ENV, Task

LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # submitit's local default (2 min) would kill real trainings


def _task(sweep: SweepDir, run_ids: list[str], settings: SlurmSettings) -> Task:
    return Task(str(sweep.root.resolve()), tuple(run_ids), settings.parallel)


def _run(cmd: list[str], timeout: float = 60) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise BackendError(f"'{cmd[0]}' not found: expected the Slurm client tools on PATH") from None
    except subprocess.TimeoutExpired:
        raise BackendError(
            f"'{' '.join(cmd[:2])}' did not answer in {timeout:.0f} s: is slurmctld up?"
        ) from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit code {proc.returncode}"]
        raise BackendError(f"'{' '.join(cmd[:2])}' failed: {lines[-1]}")
    return proc.stdout


def _quiet(cmd: list[str]) -> str | None:
    """A command's output, or None when it is missing, slow or fails: what it tells is nice to know."""
    try:
        return _run(cmd, timeout=10)
    except BackendError:
        return None


def _user() -> str:
    """This process's user by its uid: the environment ($USER) may say anything."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return ""


def slurm_limits(settings: SlurmSettings) -> slurm.Limits:
    """One cheap call each: sinfo for the partition's GPUs, sacctmgr for the user's association and QOS
    limits, squeue for the jobs pending in the partition."""
    user = _user()
    sinfo = _quiet(["sinfo", "-h", "-N", "-o", slurm.SINFO_FORMAT])
    if sinfo is None:  # no controller to ask: the others would wait on it too
        return slurm.Limits(settings.partition)
    found = slurm.parse_sinfo(sinfo, settings.partition)
    partition = found[0] if found else settings.partition
    assoc = _quiet(
        ["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}", f"format={slurm.ASSOC_FORMAT}"]
    )
    qos = _quiet(["sacctmgr", "-n", "-P", "show", "qos", f"format={slurm.QOS_FORMAT}"])
    where = ["-p", partition] if partition else []
    pending = _quiet(["squeue", "-h", "-r", "-t", "PD", *where, "-o", "%i"])
    return slurm.limits(partition, sinfo, assoc if user else None, qos, settings.qos, pending)


def slurm_room(settings: SlurmSettings, limits: slurm.Limits) -> packplan.Room:
    """Tasks at once and a task's queue wait, from the sweep's [slurm] table and the cluster's limits."""
    slots = packplan.slots(
        settings.array_parallelism,
        settings.gpus_per_task,
        limits.gpus,
        limits.user_gpus,
        limits.max_jobs,
        settings.cpus_per_task,
        limits.cpus,
    )
    if settings.gpus_per_task and limits.gpus is not None:
        where = f"{limits.gpus} GPUs in '{limits.partition}'"
        where += f", {limits.user_gpus} yours at most" if limits.user_gpus is not None else ""
    elif limits.cpus:
        where = f"{slots} tasks at once ({limits.cpus} CPUs in '{limits.partition}')"
    else:
        where = f"{slots} tasks at once"
    busy = bool(limits.pending)
    where += f", {limits.pending} jobs pending" if busy else ""
    return packplan.Room(slots, where, packplan.BUSY_QUEUE_S if busy else packplan.QUEUE_S)


@dataclass
class SlurmBackend:
    """A real Slurm cluster: job arrays via submitit, states from one sacct call per refresh."""

    name: str = "slurm"
    python: str = field(default_factory=lambda: sys.executable)
    _config: str = ""

    def check(self) -> None:
        try:
            self._config = _run(["scontrol", "show", "config"], timeout=30)
        except BackendError as exc:
            raise BackendError(f"Slurm is not reachable: {exc}") from None

    def room(self, settings: SlurmSettings) -> packplan.Room:
        return slurm_room(settings, slurm_limits(settings))

    def group(self, run_ids: Sequence[str], settings: SlurmSettings) -> list[list[str]]:
        return slurm.group(run_ids, settings)

    def _arrays(self, tasks: list[list[str]]) -> list[list[list[str]]]:
        """Tasks split into arrays the cluster accepts (MaxArraySize from `scontrol show config`)."""
        if not self._config:
            self.check()
        return list(slurm.chunks(tasks, slurm.max_array_size(self._config)))

    def scripts(self, sweep: SweepDir, tasks: list[list[str]], settings: SlurmSettings) -> list[str]:
        params = slurm.executor_parameters(settings, slurm.job_name(sweep.name))
        folder = str(sweep.submitit_dir.resolve())
        return [slurm.sbatch_script(folder, params, len(chunk), self.python) for chunk in self._arrays(tasks)]

    def submit(
        self, sweep: SweepDir, tasks: list[list[str]], settings: SlurmSettings
    ) -> Iterator[Submission]:
        from .submititlib import submitit, submitting

        executor = submitit.SlurmExecutor(folder=sweep.submitit_dir, python=self.python)
        executor.update_parameters(**slurm.executor_parameters(settings, slurm.job_name(sweep.name)))
        for chunk in self._arrays(tasks):
            try:
                with submitting(sweep.submitit_dir):
                    jobs = executor.submit_array([_task(sweep, ids, settings) for ids in chunk])
            except OSError:  # writing the pickles (a full disk): the file, not sbatch, is the problem
                raise
            except Exception as exc:  # submitit raises several kinds; the user needs the sbatch message
                lines = str(exc).strip().splitlines() or [type(exc).__name__]
                raise BackendError(f"sbatch refused the sweep: {lines[-1]}") from None
            yield Submission("slurm", jobs[0].job_id.split("_")[0], chunk, settings.parallel)

    def states(self, subs: Sequence[Submission]) -> tuple[States, str]:
        if not subs:
            return {}, ""
        ids = ",".join(s.job_id for s in subs)
        try:
            out = _run(["sacct", "-X", "-P", "-n", "-j", ids, f"--format={slurm.SACCT_FORMAT}"])
            rows = slurm.parse_sacct(out)
        except BackendError as exc:
            warning = f"accounting unavailable ({exc}); states from squeue and the run folders"
        else:
            if not any(row.state in ACTIVE for row in rows.values()):
                return rows, ""  # every job has ended: what accounting says is final
            # Accounting answers while the controller is down, and then says PENDING/RUNNING forever.
            try:
                _run(["squeue", "-h", "-j", ids, "-o", "%i"], timeout=30)
            except BackendError as exc:
                return rows, f"{UNREACHABLE}: the controller does not answer ({exc}); states from accounting"
            return rows, ""
        try:
            out = _run(["squeue", "-h", "-r", "-j", ids, "-o", slurm.SQUEUE_FORMAT])
        except BackendError as exc:
            return {}, f"{UNREACHABLE} ({exc}); showing the last state written to disk"
        return slurm.parse_squeue(out), warning

    def own(self, sweep: SweepDir, subs: Sequence[Submission]) -> list[Submission]:
        """Asks sacct, and squeue (accounting may not know a job submitted a moment ago)."""
        ids = ",".join(s.job_id for s in subs if s.job_id.isdigit())
        if not ids:
            return []
        answers = [
            _quiet(["sacct", "-X", "-P", "-n", "-j", ids, f"--format={slurm.OWNER_SACCT_FORMAT}"]),
            _quiet(["squeue", "-h", "-j", ids, "-o", slurm.OWNER_SQUEUE_FORMAT]),
        ]
        if answers == [None, None]:
            raise BackendError(f"neither sacct nor squeue answered: expected one to say whose jobs {ids} are")
        owned = slurm.owned_jobs("\n".join(a or "" for a in answers), _user(), slurm.job_name(sweep.name))
        return [s for s in subs if s.job_id in owned]

    def cancel(self, subs: Sequence[Submission]) -> None:
        if subs:
            _run(["scancel", *[s.job_id for s in subs]])

    def follow_up(self, sweep: SweepDir, after: Sequence[str], settings: SlurmSettings) -> str:
        root = str(sweep.root.resolve())
        argv = slurm.promote_argv(root, settings, after, self.python, str(sweep.promote_log.resolve()))
        return slurm.parse_sbatch_parsable(_run(argv))


def _ours(sub: Submission) -> bool:
    """The local worker of a submission is alive, and is that very process: same machine, same start
    time (a pid reused by another process has another). A zombie counts as gone."""
    start = process_start(int(sub.job_id))
    if start is None or sub.host not in ("", socket.gethostname()):
        return False
    return sub.process_start in ("", start)  # "": recorded before hpcjobs kept start times


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def _controllers_in_own_session(extra_env: dict[str, str]) -> Iterator[None]:
    """submitit starts each local controller in our process group, so the Ctrl-C that stops
    `submit --wait` would stop the trainings too. In their own session they run on, as sbatch jobs would.
    submitit has no option for it: its module's view of `subprocess` is swapped for the call. The
    controllers' environment gets `extra_env` on top of the one submitit gives them. SIGINT, which `cancel`
    sends them, is theirs to handle even when `submit` ran in the background of a script (`&` makes a shell
    ignore it, and children inherit that)."""
    from .submititlib import local

    def popen(command: Any, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
        merged = {**(os.environ if env is None else env), **extra_env}
        return subprocess.Popen(
            command, env=merged, start_new_session=True, preexec_fn=_default_sigint, **kwargs
        )

    shim = types.SimpleNamespace(**vars(subprocess))
    shim.Popen = popen
    namespace = vars(local)
    saved = namespace["subprocess"]
    namespace["subprocess"] = shim
    try:
        yield
    finally:
        namespace["subprocess"] = saved


@dataclass
class LocalBackend:
    """This machine: worker processes each training its share of runs in turn; one per core, or several
    sharing the first visible GPU (local_workers)."""

    max_parallel: int = field(default_factory=lambda: os.cpu_count() or 1)
    gpus: list[int] = field(default_factory=lambda: visible_gpus(dict(os.environ), nvidia_smi_list()))
    name: str = "local"

    @property
    def workers(self) -> tuple[int, list[int]]:
        return local_workers(self.max_parallel, self.gpus)

    @property
    def device(self) -> str:
        """Where the runs train, for the user: 'GPU 0, shared by 4 processes' or 'CPU, 2 processes'."""
        processes, gpus = self.workers
        if gpus:
            return f"GPU {gpus[0]}, shared by {processes} processes"
        return f"CPU, {processes} {'process' if processes == 1 else 'processes'}"

    def check(self) -> None:
        """Nothing to reach."""

    def room(self, settings: SlurmSettings) -> packplan.Room:
        """A slot per worker process, all started at once, none waiting in a queue."""
        processes, gpus = self.workers
        return packplan.Room(processes, self.device, queue_s=0.0, all_at_once=True, gpu=bool(gpus))

    def group(self, run_ids: Sequence[str], settings: SlurmSettings) -> list[list[str]]:
        """A task (one process) per runs_per_task runs, as packing.pack resolved it for this room; a lane
        per worker where there would be more tasks than workers (a sweep packed for Slurm before)."""
        tasks = slurm.group(run_ids, replace(settings, trials_per_gpu=1))
        return tasks if len(tasks) <= self.workers[0] else lanes(run_ids, self.workers[0])

    def submit(
        self, sweep: SweepDir, tasks: list[list[str]], settings: SlurmSettings
    ) -> Iterator[Submission]:
        from .submititlib import submitit, submitting

        _, gpus = self.workers
        executor = submitit.LocalExecutor(folder=sweep.submitit_dir)
        # submitit shows each local job the GPUs asked for (CUDA_VISIBLE_DEVICES), none when asked for none.
        executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN, gpus_per_node=len(gpus), visible_gpus=gpus)
        for ids in tasks:
            with _controllers_in_own_session(SHARED_GPU_ENV if gpus else {}), submitting(sweep.submitit_dir):
                job = executor.submit(Task(str(sweep.root.resolve()), tuple(ids)))
            start = process_start(int(job.job_id)) or ""
            yield Submission("local", job.job_id, [ids], process_start=start, host=socket.gethostname())

    def scripts(self, sweep: SweepDir, tasks: list[list[str]], settings: SlurmSettings) -> list[str]:
        return []

    def states(self, subs: Sequence[Submission]) -> tuple[States, str]:
        return {(s.job_id, 0): JobRow(RunState.RUNNING if _ours(s) else "ENDED") for s in subs}, ""

    def own(self, sweep: SweepDir, subs: Sequence[Submission]) -> list[Submission]:
        """The controllers alive (_ours) whose command line is that of this sweep's controller."""
        folders = locks.submitit_folders(sweep)
        return [
            s
            for s in subs
            if s.job_id.isdigit()
            and _ours(s)
            and locks.is_submitit_process(locks.command_line(int(s.job_id)), locks.CONTROLLER, folders)
        ]

    def cancel(self, subs: Sequence[Submission]) -> None:
        # SIGINT, as submitit's own LocalJob.cancel: the controller then stops its task. SIGTERM would be
        # forwarded to the task, whose submitit handler ignores it (on Slurm it only announces the end).
        for sub in subs:
            if _ours(sub):
                os.kill(int(sub.job_id), signal.SIGINT)

    def follow_up(self, sweep: SweepDir, after: Sequence[str], settings: SlurmSettings) -> None:
        """Local workers cannot hold a job back: `submit --wait` or `hpcjobs promote` drives the search."""


@dataclass
class FakeBackend:
    """In-memory scheduler for tests: records submissions; states are whatever the test scripts.

    With `run=True` each task runs in this process as a compute node would run it: once the command that
    submitted it lets go of the sweep (locks.after_sweep), so before that command returns.
    """

    name: str = "fake"
    run: bool = False
    scripted: States = field(default_factory=dict)
    submitted: list[Submission] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    followed: list[list[str]] = field(default_factory=list)  # the jobs each follow-up waits for
    state_calls: int = 0
    down: bool = False
    scripted_room: packplan.Room | None = None  # None: the [slurm] table's array_parallelism, no other limit
    array_size: int = 0  # tasks per array, as MaxArraySize cuts them; 0: all in one
    refuse_after: int | None = None  # sbatch accepts this many arrays, then refuses (MaxJobCount)
    cancel_error: str = ""  # scancel fails with this
    foreign: set[str] = field(default_factory=set)  # job ids the scheduler says are not this sweep's

    def check(self) -> None:
        if self.down:
            raise BackendError("Slurm is not reachable: fake controller is down")

    def room(self, settings: SlurmSettings) -> packplan.Room:
        return self.scripted_room or slurm_room(settings, slurm.Limits(settings.partition))

    def group(self, run_ids: Sequence[str], settings: SlurmSettings) -> list[list[str]]:
        return slurm.group(run_ids, settings)

    def submit(
        self, sweep: SweepDir, tasks: list[list[str]], settings: SlurmSettings
    ) -> Iterator[Submission]:
        self.check()
        for chunk in slurm.chunks(tasks, self.array_size or max(1, len(tasks))):
            if self.refuse_after is not None and len(self.submitted) >= self.refuse_after:
                raise BackendError("sbatch refused the sweep: Resource temporarily unavailable")
            sub = Submission("fake", str(1000 + len(self.submitted)), chunk, settings.parallel)
            self.submitted.append(sub)
            if self.run:
                for ids in chunk:
                    after_sweep(sweep, _task(sweep, ids, settings))
            yield sub

    def scripts(self, sweep: SweepDir, tasks: list[list[str]], settings: SlurmSettings) -> list[str]:
        return [f"# fake array of {len(tasks)} tasks"]

    def states(self, subs: Sequence[Submission]) -> tuple[States, str]:
        self.state_calls += 1
        if self.down:
            return {}, f"{UNREACHABLE} (fake controller is down); showing the last state written to disk"
        ids = {s.job_id for s in subs}
        return {k: v for k, v in self.scripted.items() if k[0] in ids}, ""

    def own(self, sweep: SweepDir, subs: Sequence[Submission]) -> list[Submission]:
        return [s for s in subs if s.job_id not in self.foreign]

    def cancel(self, subs: Sequence[Submission]) -> None:
        if self.cancel_error:
            raise BackendError(f"'scancel' failed: {self.cancel_error}")
        self.cancelled.extend(s.job_id for s in subs)

    def follow_up(self, sweep: SweepDir, after: Sequence[str], settings: SlurmSettings) -> str:
        self.followed.append(list(after))
        return f"promote-{len(self.followed)}"


def auto(executor: str = "auto") -> Backend:
    """--executor auto: Slurm where sbatch exists, else this machine."""
    if executor == "slurm" or (executor == "auto" and shutil.which("sbatch")):
        return SlurmBackend()
    if executor in ("local", "auto"):
        return LocalBackend()
    raise BackendError(f"unknown executor '{executor}': expected auto, slurm or local")


def for_executor(executor: str) -> Backend:
    """The backend that answers for an earlier submission, by the executor name in the manifest."""
    return FakeBackend() if executor == "fake" else auto(executor)
