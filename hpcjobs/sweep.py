"""Submitting, resubmitting and cancelling a sweep: spec + results folder + backend.

The order of operations is the point: validate everything, reach the scheduler, and only then write;
a failed first submission removes the folder it created.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import layout, locks, manifest, measured, packing, programs, search, slurm, status
from .jobs import SweepError, check_private, follow_search, submit_recorded
from .manifest import Manifest
from .packplan import Plan, Room
from .plan import mlp_params
from .results import recorded_status
from .scheduler import Backend
from .settings import Run, SlurmSettings
from .spec import Spec, data_sources, expand, load_spec
from .vocab import ACTIVE, DATASETS, FINISHED, RETRYABLE, DataError, RunState, Submission


@dataclass
class Outcome:
    sweep: layout.SweepDir
    runs: list[Run]
    to_submit: list[str]
    tasks: list[list[str]]
    settings: SlurmSettings  # [slurm] with packing resolved
    plan: Plan | None = None  # the packing and its estimate (None: resubmitted as first packed)
    where: str = ""  # the room the plan was made for, in words
    submissions: list[Submission] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)  # sbatch text, for --dry-run on Slurm
    states: dict[str, int] = field(default_factory=dict)  # run counts by state, of a sweep submitted before
    warning: str = ""  # submitted, but something after it failed (a search's dependent promote job)
    search: list[str] = field(default_factory=list)  # a new halving search: its rungs (search.plan)


def check_data(spec: Spec, where: str = "sweep file") -> list[tuple[int, int]]:
    """Read every user data file on the login node before anything is submitted: (features, classes) each.
    A problem names `where` (the sweep file) and the key, like every other error in it."""
    from .data import PACKAGED, check_cached, check_packaged
    from .kerascache import CACHED_FILES
    from .logindata import BUILTIN_SHAPES, check_file

    shapes = []
    for source in data_sources(spec):
        try:
            if source in DATASETS:
                if source in CACHED_FILES:  # the login node shares the cache with the compute nodes
                    check_cached(source)
                if source in PACKAGED:  # and, as a rule, the Python environment
                    check_packaged(source)
                shapes.append(BUILTIN_SHAPES[source])
                continue
            shapes.append(check_file(source))
        except DataError as exc:
            key = 'sweep."data.source"' if "data.source" in spec.axes else "data.source"
            relative = "" if source in DATASETS else " (a relative path is read from the sweep file's folder)"
            raise SweepError(f"{where}: {key}: {exc}{relative}") from None
    return shapes


def check_time(time: str, where: str) -> None:
    """A time limit shorter than the checkpoint signal's lead would requeue the job forever."""
    minutes = slurm.time_to_minutes(time)
    if 0 < minutes * 60 < slurm.MIN_TIME_S:
        raise SweepError(
            f"{where}: slurm.time {time!r} is shorter than {slurm.MIN_TIME_S // 60} minutes: the checkpoint "
            f"signal comes {slurm.SIGNAL_DELAY_S} s before the end, so the job would be requeued over and "
            f"over; expected at least {slurm.MIN_TIME_S // 60} minutes (e.g. 00:20:00)"
        )


def memory_floor(params: int, batch_size: int, hidden: Sequence[int]) -> int:
    """Bytes a training needs at the least: float32 weights, gradients and two optimizer moments, and the
    largest layer's activations for one evaluation batch. A floor, not an estimate: a run needing more
    than the job's memory fails on every node."""
    from .plan import EVAL_BATCH_SIZE

    return 16 * params + 4 * max(batch_size, EVAL_BATCH_SIZE) * max(hidden, default=0)


def check_memory(runs: list[Run], shapes: list[tuple[int, int]], settings: SlurmSettings, where: str) -> None:
    """Refuse a sweep whose largest training cannot fit in slurm.mem_gb (shared by trials_per_gpu
    processes), naming the figure, instead of letting every node fail on it."""
    n_in, n_out = max(s[0] for s in shapes), max(s[1] for s in shapes)
    limit = settings.mem_gb * 2**30 / settings.parallel
    for run in runs:
        hidden, batch = run.settings.model.hidden, run.settings.train.batch_size
        need = memory_floor(mlp_params(n_in, hidden, n_out), batch, hidden)
        if need > limit:
            shared = f" shared by {settings.parallel} processes" if settings.parallel > 1 else ""
            raise SweepError(
                f"{where}: model.hidden {list(hidden)} with train.batch_size {batch} needs at least "
                f"{need / 2**30:.1f} GiB, more than slurm.mem_gb = {settings.mem_gb}{shared}: expected "
                f"smaller layers or more memory"
            )


def max_params(runs: list[Run], shapes: list[tuple[int, int]]) -> int:
    """The largest model of the sweep, in weights: how many trainings share a GPU decides on it."""
    hidden = {r.settings.model.hidden for r in runs}
    return max(mlp_params(n_in, h, n_out) for h in hidden for n_in, n_out in shapes)


def max_processes(runs: list[Run], shapes: list[tuple[int, int]], table: SlurmSettings) -> int:
    """Processes that may share a task's GPU: one core each, as many as the GPU has room for at the sweep's
    largest model (slurm.trials_per_gpu), each with the memory its largest training needs."""
    n_in, n_out = max(s[0] for s in shapes), max(s[1] for s in shapes)
    need = max(
        memory_floor(
            mlp_params(n_in, r.settings.model.hidden, n_out),
            r.settings.train.batch_size,
            r.settings.model.hidden,
        )
        for r in runs
    )
    fit = int(table.mem_gb * 2**30 // max(1, need))
    return max(1, min(table.cpus_per_task, slurm.trials_per_gpu(max_params(runs, shapes)), fit))


def config_params(runs: list[Run], spec: Spec, shapes: list[tuple[int, int]]) -> dict[str, int]:
    """Each configuration's model size in weights, for its data's shape."""
    shape = dict(zip(data_sources(spec), shapes, strict=True))
    return {
        r.config_id: mlp_params(
            shape[r.settings.data.source][0], r.settings.model.hidden, shape[r.settings.data.source][1]
        )
        for r in runs
    }


def _existing(sweep: layout.SweepDir, spec: Spec, runs: list[Run]) -> Manifest | None:
    """The sweep's manifest if this exact sweep was submitted before; None if the folder is new."""
    if sweep.root.exists() and not sweep.root.is_dir():
        raise SweepError(f"{sweep.root} is a file: expected a results folder (use --results to pick another)")
    if not sweep.root.exists():
        return None
    if not sweep.exists():
        raise SweepError(
            f"{sweep.root} exists but was not made by hpcjobs: expected a new sweep name "
            f"or a different --results folder"
        )
    check_private(sweep.root)
    old = manifest.read(sweep)
    new = Manifest.new(spec.name, spec.backend, runs, spec.slurm)
    if (old.backend, old.runs) != (new.backend, new.runs):
        raise SweepError(
            f"{sweep.root} holds sweep '{old.name}' with different settings "
            f"({manifest.differences(old, new)}): expected the same sweep file to continue it, or a new name"
        )
    return old


def select(states: dict[str, str], mode: str) -> list[str]:
    """Runs to submit again: `failed` ones, or `unfinished` (failed + never submitted). Pure."""
    wanted = RETRYABLE if mode == "failed" else RETRYABLE | {RunState.NOT_SUBMITTED}
    return [run_id for run_id, state in states.items() if state in wanted]


def _set_aside(sweep: layout.SweepDir, run_ids: list[str]) -> None:
    """A failed attempt's result would hide the new attempt: keep it beside, never delete it. Called once
    the new attempt is submitted and recorded, so a submission that fails leaves every result in place
    (its workers wait for the sweep lock, so none of them has written a new result yet)."""
    for run_id in run_ids:
        old = sweep.result(run_id)
        if old.is_file() and recorded_status(old) not in FINISHED:  # one finished meanwhile stands
            old.replace(sweep.previous_result(run_id))


@dataclass
class Prepared:
    spec: Spec
    runs: list[Run]
    sweep: layout.SweepDir
    settings: SlurmSettings  # [slurm] with packing resolved (by _plan, for the runs it submits)
    inputs: packing.Inputs
    room: Room | None  # None: one run a task (export-sbatch)
    old: Manifest | None = None  # the manifest when this sweep was submitted before (read under its lock)
    plan: Plan | None = None


def _prepare(sweep_file: Path, results: str | Path | None, backend: Backend | None) -> Prepared:
    """Everything that can be checked before a byte is written, and what packing needs to know."""
    spec = load_spec(sweep_file)
    runs = expand(spec)
    shapes = check_data(spec, str(sweep_file))
    check_time(spec.slurm.time, str(sweep_file))
    trials = spec.slurm.trials_per_gpu
    one = replace(spec.slurm, trials_per_gpu=trials if isinstance(trials, int) else 1, runs_per_task=1)
    check_memory(runs, shapes, one, str(sweep_file))
    root = layout.results_root(results)
    if root.exists() and not root.is_dir():
        raise SweepError(f"--results {root} is a file: expected a folder")
    sweep = layout.SweepDir(root / spec.name)
    earlier = measured.read_results(root, spec.backend, backend.name if backend else "")
    params = config_params(runs, spec, shapes)
    inputs = packing.inputs(runs, params, spec.slurm, earlier, max_processes(runs, shapes, spec.slurm))
    room = backend.room(spec.slurm) if backend else None
    return Prepared(spec, runs, sweep, replace(one, runs_per_task=1), inputs, room)


def _write_new(p: Prepared, sweep_file: Path) -> Manifest:
    layout.make_private_dir(p.sweep.root)
    layout.write_text(p.sweep.sweep_file, layout.read_text(sweep_file))
    state = None
    if p.spec.search.method == "halving":
        budget = p.spec.settings.train.epochs
        state = search.start(p.spec.search.min_epochs, p.spec.search.eta, budget, [r.run_id for r in p.runs])
    for run in p.runs:
        config = run.config(p.spec.name, p.spec.backend)
        layout.write_config(p.sweep, search.rung_config(config, state.epochs[0]) if state else config)
    if state:
        search.write(p.sweep, state)
    man = Manifest.new(p.spec.name, p.spec.backend, p.runs, p.settings)
    if p.plan and p.room:
        man.packing = packing.record(p.plan, p.room, p.inputs)
    manifest.write(p.sweep, man)
    return man


def submit(
    sweep_file: Path,
    results: str | Path | None,
    backend: Backend,
    backend_for: Callable[[str], Backend],
    dry_run: bool = False,
) -> Outcome:
    p = _prepare(sweep_file, results, backend)
    if dry_run:
        p.old = _existing(p.sweep, p.spec, p.runs)
        outcome = _plan(p, backend, backend_for)
        outcome.scripts = backend.scripts(p.sweep, outcome.tasks, p.settings)
        return outcome
    new_results = not p.sweep.root.parent.exists()
    with locks.sweep_lock(p.sweep):
        p.old = _existing(p.sweep, p.spec, p.runs)
        try:
            outcome = _plan(p, backend, backend_for)
            if outcome.to_submit:
                backend.check()
                _submit_andrecord(p, sweep_file, outcome, backend)
        except BaseException:
            if p.old is None and not _remove_created(p.sweep, [r.run_id for r in p.runs]):
                locks.remove_lock_file(p.sweep, folder_too=new_results)
            raise
    return outcome


def _remove_created(sweep: layout.SweepDir, run_ids: list[str]) -> bool:
    """Undo a failed first submit, under the sweep lock: the folder did not exist when this command took
    the lock, so what _write_new wrote and the submitit folder (the pickles and logs of the jobs this
    command submitted and cancelled) are its own. Folders go only once empty: never one holding
    something else. Nothing goes while the manifest names jobs (their cancel failed: `hpcjobs cancel`
    must reach them). Whether something stays."""
    try:
        if sweep.exists() and manifest.read(sweep).submissions:
            return True
    except layout.LayoutError:
        return True
    files = [sweep.manifest, sweep.search_state, sweep.sweep_file, *(sweep.config(r) for r in run_ids)]
    for path in files:
        path.unlink(missing_ok=True)
    shutil.rmtree(sweep.submitit_dir, ignore_errors=True)
    for folder in [*(sweep.run_dir(r) for r in run_ids), sweep.runs_dir, sweep.root]:
        with contextlib.suppress(OSError):
            folder.rmdir()
    return sweep.root.exists()


def _plan(p: Prepared, backend: Backend, backend_for: Callable[[str], Backend]) -> Outcome:
    states: dict[str, int] = {}
    if p.old is None:
        todo = [r.run_id for r in p.runs]
    else:
        st = status.gather(p.sweep, backend_for)
        todo, states = select({r.run_id: r.state for r in st.runs}, "unfinished"), st.counts
    todo = programs.program_order(todo, {r.run_id: r.settings for r in p.runs})
    if p.room is not None:
        by_id = {r.run_id: r for r in p.runs}
        epochs = None
        if p.spec.search.method == "halving":  # its first rung trains the runs this far
            s = p.spec.search
            epochs = dict.fromkeys(
                todo, search.rung_epochs(s.min_epochs, s.eta, p.spec.settings.train.epochs)[0]
            )
        p.settings, p.plan = packing.pack([by_id[r] for r in todo], p.spec.slurm, p.inputs, p.room, epochs)
    tasks = backend.group(todo, p.settings)
    where = p.room.where if p.room else ""
    outcome = Outcome(p.sweep, p.runs, todo, tasks, p.settings, p.plan, where, states=states)
    rule = p.spec.search
    if rule.method == "halving" and p.old is None:
        configs, budget = len({r.config_id for r in p.runs}), p.spec.settings.train.epochs
        outcome.search = search.plan(configs, len(p.spec.seeds), rule.min_epochs, rule.eta, budget)
    return outcome


def _submit_andrecord(p: Prepared, sweep_file: Path, outcome: Outcome, backend: Backend) -> None:
    man = p.old or _write_new(p, sweep_file)
    outcome.submissions = submit_recorded(p.sweep, man, backend, outcome.tasks, p.settings)
    _set_aside(p.sweep, outcome.to_submit)
    outcome.warning = follow_search(p.sweep, backend, outcome.submissions, p.settings)


def export_sbatch(sweep_file: Path, results: str | Path | None, python: str) -> Path:
    """Write the sweep folder and a plain sbatch array script (one run per array task) to submit by hand."""
    p = _prepare(sweep_file, results, None)
    if p.spec.search.method == "halving":
        raise SweepError(
            f'{sweep_file}: export-sbatch trains every run once: expected search.method "grid" or "random" '
            f"(submit a halving search with `hpcjobs submit`)"
        )
    with locks.sweep_lock(p.sweep):
        p.old = _existing(p.sweep, p.spec, p.runs)
        if p.old is None:
            _write_new(p, sweep_file)
        root = str(p.sweep.root.resolve())
    script = slurm.export_script(root, p.spec.slurm, slurm.job_name(p.spec.name), len(p.runs), python)
    layout.write_text(p.sweep.export_script, script)
    p.sweep.export_script.chmod(0o700)
    layout.make_private_dir(p.sweep.submitit_dir)  # sbatch cannot create the folder of its log files
    return p.sweep.export_script


def resubmit(
    sweep: layout.SweepDir, mode: str, backend_for: Callable[[str], Backend], executor: str | None = None
) -> Outcome:
    """Submit again only the runs that need it: `failed`, or `unfinished` (failed + never submitted)."""
    check_private(sweep.root)
    with locks.sweep_lock(sweep):
        man = manifest.read(sweep)
        states = {r.run_id: r.state for r in status.gather(sweep, backend_for).runs}
        last = man.submissions[-1].executor if man.submissions else "auto"
        backend = backend_for(executor or last)
        backend.check()
        todo = programs.program_order(select(states, mode), {r.run_id: r.settings for r in man.runs})
        room = backend.room(man.slurm)
        settings, plan = packing.repack(man, todo, room)
        outcome = Outcome(sweep, [], todo, backend.group(todo, settings), settings, plan, room.where)
        if todo:
            _rewrite_missing_configs(sweep, man, todo)
            outcome.submissions = submit_recorded(sweep, man, backend, outcome.tasks, settings)
            _set_aside(sweep, todo)
            outcome.warning = follow_search(sweep, backend, outcome.submissions, settings)
    return outcome


def _rewrite_missing_configs(sweep: layout.SweepDir, man: Manifest, run_ids: list[str]) -> None:
    """A run folder that is gone (removed by hand, or by a failed submit before issue 22) is written again
    from the manifest, at the epochs of a halving search's current rung: its worker would fail without."""
    state = search.read(sweep)
    by_id = {r.run_id: r for r in man.runs}
    for run_id in run_ids:
        if sweep.config(run_id).is_file():
            continue
        config = by_id[run_id].config(man.name, man.backend)
        if state:  # the last rung that trains the run
            epochs = next((rung.epochs for rung in reversed(state.rungs) if run_id in rung.runs), 0)
            config = search.rung_config(config, epochs or state.epochs[0])
        layout.write_config(sweep, config)


def cancel(sweep: layout.SweepDir, backend_for: Callable[[str], Backend]) -> list[str]:
    """Cancel every job of the sweep that still has work and that the scheduler says is the sweep's own
    (its manifest names jobs, it does not prove them); returns their job ids."""
    check_private(sweep.root)
    check_private(sweep.manifest)
    with locks.sweep_lock(sweep):
        return _cancel(sweep, backend_for)


def _cancel(sweep: layout.SweepDir, backend_for: Callable[[str], Backend]) -> list[str]:
    man = manifest.read(sweep)
    st = status.gather(sweep, backend_for)
    busy = {r.run_id for r in st.runs if r.state in ACTIVE}
    cancelled: list[str] = []
    for executor in {s.executor for s in man.submissions}:
        subs = [
            s
            for s in man.submissions
            if s.executor == executor and any(r in busy for task in s.tasks for r in task)
        ]
        backend = backend_for(executor)
        own = backend.own(sweep, subs)
        backend.cancel(own)
        cancelled.extend(s.job_id for s in own)
    # A local run trained by a process whose controller was killed (kill -9): its job has ended, its
    # trainer has not. Stopped too, once it is proven to be that very process (pid, start time, host) and
    # a task of this sweep (its command line); one whose controller lives was reached through it above.
    latest = man.latest_job()
    for run in st.runs:
        sub = latest.get(run.run_id, (None, 0))[0]
        if run.run_id not in busy or sub is None or sub.executor != "local":
            continue
        holder = locks.holder(sweep, run.run_id)
        if holder and locks.parent_pid(holder.pid) != int(sub.job_id) and locks.interrupt(holder, sweep):
            cancelled.append(f"{holder.pid} (trainer of {run.run_id})")
    return cancelled
