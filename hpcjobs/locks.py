"""Advisory locks (fcntl.flock), the one place hpcjobs decides who may touch a sweep or a run.

- The sweep lock is held, exclusively, by every command that reads a sweep's state, decides, submits and
  records (submit, resubmit, cancel, any manifest read-modify-write): a second command waits briefly, then
  says the sweep is busy. Workers take it shared for an instant before training, so a run submitted by a
  command starts only once that command has recorded the submission.
- A run lock is held by the process training the run, for as long as it trains. It names that process
  (pid, start time, host), so `status` can tell a run still training under an ended job from a lost one,
  and a second worker skips the run instead of training it twice. The kernel drops a lock when its
  process dies, however it dies: a lock is never stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .layout import LayoutError, SweepDir

SWEEP_WAIT_S = 10.0  # a second command waits this long for the first, then says the sweep is busy
RUN_WAIT_S = 1.0  # a worker waits this long for a run's lock (status peeks hold it for microseconds)
WORKER_WAIT_S = 300.0  # a worker waits at most this long for the command that submitted it to record
# Kept allocated in the run lock while a run trains and given back when a write fails on a full disk,
# so that the run can still say why it failed.
RESERVE_BYTES = 64 * 1024

# The sweep locks this thread holds (sweep_lock is re-entrant), and what waits for their release.
_held = threading.local()


class Busy(Exception):
    """Another command holds the sweep's lock; the message is one line for the user."""


@dataclass(frozen=True)
class Holder:
    """The process holding a run lock."""

    pid: int
    start: str  # field 22 of /proc/PID/stat: with the pid, names one process for the machine's uptime
    host: str

    def is_here(self) -> bool:
        """The holder runs on this machine and is the very process that took the lock."""
        return self.host == socket.gethostname() and process_start(self.pid) == self.start


def process_start(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (None if there is no such process): a pid that
    is reused names another process with another start time."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 and fields[0] not in ("Z", "X") else None


def parent_pid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if len(fields) > 1 else None


def command_line(pid: int) -> list[str]:
    """A process's arguments, [] if there is no such process (or it hides them)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


# The processes of a sweep's local jobs, `python -m MODULE FOLDER` with FOLDER its submitit folder.
CONTROLLER = "submitit.local._local"  # what LocalBackend starts; its pid is the job id
TRAINER = "submitit.core._submit"  # what the controller starts; it holds the run locks


def is_submitit_process(argv: list[str], module: str, folders: set[str]) -> bool:
    """Whether a command line is `python ... -m MODULE FOLDER` for one of `folders` (a sweep's
    submitit folder, as given and resolved): a pid's start time proves it is the process that started
    then, this proves it is the sweep's own. Pure."""
    return any(a == "-m" and b == module for a, b in itertools.pairwise(argv)) and argv[-1] in folders


def submitit_folders(sweep: SweepDir) -> set[str]:
    return {str(sweep.submitit_dir.absolute()), str(sweep.submitit_dir.resolve())}


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses); [] if none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise LayoutError(f"{path}: cannot open lock file ({exc.strerror})") from None


def _acquire(fd: int, kind: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _held_sweeps() -> set[str]:
    if not hasattr(_held, "sweeps"):
        _held.sweeps = set()
    held: set[str] = _held.sweeps
    return held


def _deferred() -> dict[str, list[Callable[[], object]]]:
    if not hasattr(_held, "deferred"):
        _held.deferred = {}
    deferred: dict[str, list[Callable[[], object]]] = _held.deferred
    return deferred


def _lock_on_disk(path: Path, wait_s: float) -> int | None:
    """An exclusive lock on the lock file that is on disk at `path`, None after `wait_s`. A failed first
    submit removes its lock file (and the results folder it made) while holding it: whoever waited on
    that file then holds a file no one else will open, and takes the new one instead."""
    deadline = time.monotonic() + wait_s
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:  # the folder went between mkdir and open
            continue
        except OSError as exc:
            raise LayoutError(f"{path}: cannot open lock file ({exc.strerror})") from None
        if not _acquire(fd, fcntl.LOCK_EX, max(0.0, deadline - time.monotonic())):
            os.close(fd)
            return None
        try:
            on_disk = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            on_disk = None
        held = os.fstat(fd)
        if on_disk and (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)


def remove_lock_file(sweep: SweepDir, folder_too: bool) -> None:
    """Remove the sweep's lock file, and its folder (the results folder) where `folder_too` and nothing
    else is in it; called while holding the lock, by a first submit that leaves nothing behind."""
    assert str(sweep.lock_file.absolute()) in _held_sweeps(), "remove_lock_file outside sweep_lock"
    with contextlib.suppress(OSError):
        sweep.lock_file.unlink()
        if folder_too:
            sweep.lock_file.parent.rmdir()  # OSError (not empty): it holds something else


@contextlib.contextmanager
def sweep_lock(sweep: SweepDir, wait_s: float | None = None) -> Iterator[None]:
    """Hold the sweep exclusively; Busy after `wait_s` (SWEEP_WAIT_S) seconds if another command holds it."""
    path = sweep.lock_file
    key = str(path.absolute())
    if key in _held_sweeps():
        yield
        return
    fd = _lock_on_disk(path, SWEEP_WAIT_S if wait_s is None else wait_s)
    if fd is None:
        raise Busy(
            f"sweep '{sweep.name}' is busy: another hpcjobs command is submitting, resubmitting or "
            f"cancelling it (lock {path}); try again when it has finished"
        )
    try:
        _held_sweeps().add(key)
        try:
            yield
        finally:
            _held_sweeps().discard(key)
            deferred = _deferred().pop(key, [])
    finally:
        os.close(fd)  # closing the descriptor releases the lock
    for task in deferred:  # not after a command that raised: it cancels what it could not record
        task()


def after_sweep(sweep: SweepDir, task: Callable[[], object]) -> None:
    """Run `task` in this process once this thread no longer holds the sweep: at once, or when its
    sweep_lock ends. A task run in-process (FakeBackend(run=True)) so starts as a worker elsewhere does,
    after the command that submitted it has recorded it and set aside the results it replaces."""
    key = str(sweep.lock_file.absolute())
    if key in _held_sweeps():
        _deferred().setdefault(key, []).append(task)
    else:
        task()


def wait_for_sweep(sweep: SweepDir, wait_s: float = WORKER_WAIT_S) -> None:
    """Return once no command holds the sweep (at most `wait_s`): the one that submitted this worker has
    then recorded its submission and set aside the results it replaces."""
    path = sweep.lock_file
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return  # exported sbatch scripts are submitted without hpcjobs: there is no lock to wait for
    try:
        _acquire(fd, fcntl.LOCK_SH, wait_s)
    finally:
        os.close(fd)


class RunLock:
    """A run lock this process holds, with disk space set aside in it for the run's last words."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def free_reserve(self) -> None:
        """Give the reserved space back (the disk is full: the failure result needs it)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, os.lseek(self._fd, 0, os.SEEK_CUR))


@contextlib.contextmanager
def run_lock(sweep: SweepDir, run_id: str) -> Iterator[RunLock | None]:
    """Hold a run while training it; None when another process holds it (then leave the run alone)."""
    path = sweep.run_lock(run_id)
    fd = _open(path, os.O_RDWR | os.O_CREAT)
    try:
        if not _acquire(fd, fcntl.LOCK_EX, RUN_WAIT_S):
            yield None
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {process_start(os.getpid())} {socket.gethostname()}\n".encode())
        with contextlib.suppress(OSError):  # a disk already full: train anyway, the reserve is a courtesy
            os.posix_fallocate(fd, os.lseek(fd, 0, os.SEEK_CUR), RESERVE_BYTES)
        yield RunLock(fd)
    finally:
        os.close(fd)


def interrupt(who: Holder, sweep: SweepDir) -> bool:
    """SIGINT to a run lock's holder if it is that very process on this machine and a task of this
    sweep's; whether it was sent."""
    if not who.pid or not who.is_here():
        return False
    if not is_submitit_process(command_line(who.pid), TRAINER, submitit_folders(sweep)):
        return False
    os.kill(who.pid, signal.SIGINT)
    return True


def holder(sweep: SweepDir, run_id: str) -> Holder | None:
    """The process training a run right now, None if none (a peek: the lock is held for microseconds)."""
    try:
        # O_NONBLOCK: a FIFO put in the lock's place must not hang status
        fd = os.open(sweep.run_lock(run_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if _acquire(fd, fcntl.LOCK_SH, 0):
            return None
        fields = os.read(fd, 512).split(b"\n", 1)[0].decode(errors="replace").split()
    finally:
        os.close(fd)
    if len(fields) != 3 or not fields[0].isdigit():
        return Holder(0, "", "")  # held, by a process that has not written its name yet
    return Holder(int(fields[0]), fields[1], fields[2])
