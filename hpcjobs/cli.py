"""The hpcjobs command line: each command parses, calls one library function, renders; clikit.py holds the
options they share, the one-line errors and the output. Login-node commands (status, collect) import neither
TensorFlow nor Keras; status not even pandas.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from . import backends, clikit, layout, render, search, status, watching, worker
from . import promote as promoting
from . import sweep as sweeps
from .vocab import FINISHED


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hpcjobs")
def cli() -> None:
    """Sweeps of Keras MLP trainings on a Slurm GPU cluster: submit, monitor, collect.

    \b
    Example:
      hpcjobs submit examples/moons.toml --executor local --wait
      hpcjobs status moons
      hpcjobs collect moons
    """


def _watch(sweep: layout.SweepDir, interval: float, max_interval: float) -> None:
    watching.progress(clikit.out, watching.poll(sweep, backends.for_executor, interval, max_interval))


@cli.command()
@click.argument("sweep_file", type=click.Path(path_type=Path))
@click.option(
    "--executor",
    type=click.Choice(["auto", "slurm", "local"]),
    default="auto",
    show_default=True,
    help="auto: Slurm where sbatch exists, else this machine.",
)
@clikit.results_option
@click.option("--dry-run", is_flag=True, help="Print the runs (and sbatch scripts) without submitting.")
@click.option("--wait", is_flag=True, help="Block with a progress bar until every run has ended.")
@clikit.handle_errors
def submit(sweep_file: Path, executor: str, results: Path | None, dry_run: bool, wait: bool) -> None:
    """Validate a sweep file, write its results folder and submit its runs.

    \b
    Example:
      hpcjobs submit examples/digits_depth.toml --dry-run
      hpcjobs submit examples/moons.toml --executor local --wait
    """
    backend = backends.auto(executor)
    outcome = sweeps.submit(sweep_file, results, backend, backends.for_executor, dry_run=dry_run)
    name, todo = outcome.sweep.name, outcome.to_submit
    plan = render.packing_plan(
        outcome.tasks, outcome.settings.parallel, backend.name, outcome.plan, outcome.where
    )
    if dry_run:
        for script in outcome.scripts:
            click.echo(script)
    if not todo:
        why = ", ".join(f"{state} {n}" for state, n in outcome.states.items())
        where = "" if dry_run else f": {outcome.sweep.root}"
        click.echo(f"{name}: nothing to submit: every run is finished or in flight ({why}){where}")
    elif dry_run:
        click.echo(f"{name}: would submit {plan} (dry run: nothing written or submitted)")
        for run_id in todo:
            click.echo(f"  {run_id}")
    else:
        jobs = ", ".join(s.job_id for s in outcome.submissions)
        click.echo(f"{name}: submitted {plan} (jobs {jobs}) into {outcome.sweep.root}")
    if outcome.search:
        click.echo(f"{name}: {outcome.search[0]}")
        click.echo("\n".join([*outcome.search[1:], *_promoter(outcome.sweep, backend.name, dry_run)]))
    if dry_run:
        return
    clikit.warn(outcome.warning)
    if wait:
        # Local runs are read from disk, every second: backing off, as for a controller, kept --wait up to
        # 20 s past the end of a minute-long sweep.
        interval, most = (1.0, 1.0) if backend.name == "local" else (5.0, 30.0)
        try:
            _watch(outcome.sweep, interval, most)
            # A halving search: on Slurm the dependent jobs promote too (the sweep lock makes them take
            # turns); on the local executor nothing else would.
            for promotion in promoting.drive(
                outcome.sweep, backends.for_executor, lambda: _watch(outcome.sweep, interval, most)
            ):
                click.echo(f"{name}: {promotion.decision.reason}")
                clikit.warn(promotion.warning)
        except KeyboardInterrupt:
            where = f" --results {results}" if results else ""
            click.echo(
                f"\n{name}: stopped waiting; the runs go on training. Watch them: hpcjobs status {name} "
                f"--watch{where}; stop them: hpcjobs cancel {name}{where}",
                err=True,
            )
            sys.exit(130)


def _promoter(sweep: layout.SweepDir, executor: str, dry_run: bool) -> list[str]:
    """Who moves a new search from rung to rung: a dependent job on Slurm, submit --wait here."""
    command = f"`hpcjobs promote {sweep.name}`"
    state = None if dry_run else search.read(sweep)
    jobs = state.rungs[0].promote_jobs if state else []
    first = f" (job {', '.join(jobs)} follows rung 1)" if jobs else ""
    runs = f"run {command} (submit --wait does)" if executor == "local" else f"a dependent job runs {command}"
    return [f"  after each rung {runs}:", f"  it ranks the rung and submits the next{first}"]


@cli.command()
@click.argument("name")
@clikit.results_option
@clikit.last_executor_option
@clikit.handle_errors
def promote(name: str, results: Path | None, executor: str | None) -> None:
    """Advance a halving search: rank the rung that ended, stop the runs below the cut, submit the rest
    to continue from their backups.

    On Slurm a small dependent job runs this after each rung; by hand it does the same, and running it
    twice promotes once.

    \b
    Example:
      hpcjobs promote mnist-quest
    """
    promotion = promoting.promote(layout.sweep_dir(name, results), backends.for_executor, executor)
    jobs = ", ".join(s.job_id for s in promotion.submissions)
    click.echo(f"{name}: {promotion.decision.reason}" + (f" (jobs {jobs})" if jobs else ""))
    clikit.warn(promotion.warning)


@cli.command("status")
@click.argument("name", required=False)
@clikit.results_option
@click.option("--watch", is_flag=True, help="Refresh in place until every run has ended.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--all", "show_all", is_flag=True, help="List every run (default: at most 50, most urgent first)."
)
@clikit.wide_option
@click.option(
    "--interval",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between refreshes with --watch (backs off to 60).",
)
@clikit.handle_errors
def status_cmd(
    name: str | None,
    results: Path | None,
    watch: bool,
    as_json: bool,
    show_all: bool,
    wide: bool,
    interval: float,
) -> None:
    """Show each run's state, epochs done and last validation metric.

    With no NAME, list the sweeps in the results folder. The table fits the terminal: run ids become
    short labels and the least needed columns are left out (--wide keeps them). --watch into a file or
    pipe writes one line each time the counts change.

    \b
    Example:
      hpcjobs status digits-depth
      hpcjobs status digits-depth --watch
      hpcjobs status --json
    """
    if name is None:
        found, damaged = status.gather_all(layout.known_sweeps(results), backends.for_executor)
        if as_json:
            click.echo(json.dumps([{"name": s.name, "counts": s.counts} for s in found], indent=2))
        elif found:
            clikit.out.print(render.sweeps_table(found))
        elif not damaged:
            click.echo(f"no sweeps in {layout.results_root(results)}/")
        for line in [*damaged, *(f"{st.name}: {st.warning}" for st in found if st.warning)]:
            clikit.warn(line)
        if damaged or any(st.unreachable for st in found):
            sys.exit(2 if damaged else 1)  # a sweep left out; or, as documented, states that may be stale
        return
    sweep = layout.sweep_dir(name, results)
    limit = None if show_all else 50
    if watch and not as_json:
        watching.table(
            clikit.out, watching.poll(sweep, backends.for_executor, max(2.0, interval), 60.0), limit, wide
        )
        return
    st = status.gather(sweep, backends.for_executor)
    for problem in st.problems:
        clikit.warn(problem)
    if as_json:
        click.echo(json.dumps(st.to_json(), indent=2))
    else:
        fit = clikit.width(wide)
        clikit.show(render.status_table(st, limit, fit), fit)
    if st.unreachable:
        sys.exit(1)  # as documented: the states shown may be stale


@cli.command()
@click.argument("name")
@clikit.results_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "md", "json", "parquet"]),
    default="table",
    show_default=True,
    help="table and md show 'mean ± std' text; csv, json and parquet every number (json: lists as lists). "
    "parquet needs --out.",
)
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="Write there instead of stdout.")
@click.option(
    "--sort",
    help="Sort by a summary column (best_val_loss_mean), a measure (test_f1_macro) or a table header "
    "('test F1'). Scores and samples/s sort largest first; losses, errors, seconds, epochs, stds, sizes "
    "and settings smallest first.",
)
@click.option("--ascending/--descending", default=None, help="Override the sort direction.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    help="Keep the first N configurations; without --sort, the best on the monitored metric.",
)
@click.option(
    "--where",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keep configurations whose setting KEY (e.g. model.hidden, lr, depth) equals VALUE, read as JSON "
    "(model.hidden=[64,32]) or as the table shows it (hidden=64x32). Repeatable; all must hold.",
)
@click.option(
    "--epochs",
    is_flag=True,
    help="Output the long-form table of every epoch of every run (run_id, config_id, seed, epoch counted "
    "from 1 like best epoch, metrics) instead of the summary.",
)
@click.option("--plot", is_flag=True, help="Also write PNG figures into the sweep's plots/ folder.")
@clikit.wide_option
@clikit.handle_errors
def collect(
    name: str,
    results: Path | None,
    fmt: str,
    out_file: Path | None,
    sort: str | None,
    ascending: bool | None,
    top: int | None,
    where: tuple[str, ...],
    epochs: bool,
    plot: bool,
    wide: bool,
) -> None:
    """Summarize every run into one row per configuration (mean ± std over seeds).

    Always writes the full summary to summary.csv in the sweep folder; --where, --sort and --top choose
    what is shown, and the epochs and plots follow that choice.

    \b
    Example:
      hpcjobs collect digits-depth
      hpcjobs collect digits-depth --sort "test F1" --top 3
      hpcjobs collect digits-depth --where "model.hidden=[64,32]" --format md --out summary.md
      hpcjobs collect digits-depth --epochs --format parquet --out epochs.parquet
      hpcjobs collect digits-depth --plot
    """
    from . import collect as collecting

    sweep = layout.sweep_dir(name, results)
    clikit.check_out(fmt, out_file, sweep)
    full, col = collecting.report(sweep, collecting.Query(where, sort, ascending, top))
    for problem in full.problems:
        clikit.warn(problem)
    if where and col.summary.empty and not full.summary.empty:
        why = collecting.no_match(full.runs, where)
        click.echo(f"hpcjobs: no configuration matches {' and '.join(where)}: {why}", err=True)
        sys.exit(1)
    title = (
        f"{sweep.name}: {len(col.summary)} of {render.plural(len(full.summary), 'configuration')}, "
        f"{render.plural(len(col.runs), 'run')}"
    )
    if fmt != "table":
        clikit.emit(
            render.frame_bytes(col.epochs, fmt) if epochs else render.summary_bytes(col.summary, fmt),
            out_file,
        )
    else:
        fit = None if out_file else clikit.width(wide)
        if epochs:
            table = render.epochs_table(col.epochs, title, fit)
        else:
            best, main = collecting.best_config(col.summary), collecting.rank_column(col.summary)
            table = render.summary_table(col.summary, title, best, main, fit)
        clikit.show(table, fit, out_file)
        if full.took:
            click.echo(f"{sweep.name}: {render.took(*full.took)}", err=True)
    if plot:  # last: the table is shown even when the plots cannot be written (a full disk)
        from . import plots

        for path in plots.write_plots(sweep, col):
            click.echo(f"wrote {path}", err=True)


@cli.command()
@click.argument("name")
@clikit.results_option
@click.option("--failed", "mode", flag_value="failed", default=True, help="Runs that failed (default).")
@click.option("--unfinished", "mode", flag_value="unfinished", help="Failed runs and runs never submitted.")
@clikit.last_executor_option
@clikit.handle_errors
def resubmit(name: str, results: Path | None, mode: str, executor: str | None) -> None:
    """Submit again only the runs that need it; twice in a row submits nothing the second time.

    \b
    Example:
      hpcjobs resubmit digits-depth --failed
    """
    outcome = sweeps.resubmit(layout.sweep_dir(name, results), mode, backends.for_executor, executor)
    if not outcome.to_submit:
        click.echo(f"{outcome.sweep.name}: nothing to resubmit")
        return
    jobs = ", ".join(s.job_id for s in outcome.submissions)
    executor = outcome.submissions[0].executor if outcome.submissions else ""
    plan = render.packing_plan(
        outcome.tasks, outcome.settings.parallel, executor, outcome.plan, outcome.where
    )
    click.echo(f"{outcome.sweep.name}: resubmitted {plan} (jobs {jobs})")
    clikit.warn(outcome.warning)


@cli.command()
@click.argument("name")
@clikit.results_option
@clikit.handle_errors
def cancel(name: str, results: Path | None) -> None:
    """Cancel every job of a sweep that still has work to do.

    \b
    Example:
      hpcjobs cancel digits-depth
    """
    jobs = sweeps.cancel(layout.sweep_dir(name, results), backends.for_executor)
    click.echo(f"cancelled jobs: {', '.join(jobs)}" if jobs else "nothing to cancel")


@cli.command("fetch-data")
@click.argument("dataset", type=click.Choice(["mnist", "fashion_mnist"]))
@clikit.handle_errors
def fetch_data(dataset: str) -> None:
    """Download a Keras dataset into the local cache, on a login node (compute nodes have no internet).

    \b
    Example:
      hpcjobs fetch-data mnist
    """
    from . import logindata

    click.echo(f"{dataset}: cached in {logindata.fetch(dataset)}")


@cli.command("export-sbatch")
@click.argument("sweep_file", type=click.Path(path_type=Path))
@clikit.results_option
@click.option("--python", default="python3", show_default=True, help="Python on the compute nodes.")
@clikit.handle_errors
def export_sbatch(sweep_file: Path, results: Path | None, python: str) -> None:
    """Write the sweep folder and a plain sbatch array script (no pickles), to submit by hand.

    \b
    Example:
      hpcjobs export-sbatch examples/digits_depth.toml
      sbatch results/digits-depth/sbatch.sh
    """
    path = sweeps.export_sbatch(sweep_file, results, python)
    click.echo(f"wrote {path}: submit it with `sbatch {shlex.quote(str(path))}`")


@cli.command("run")
@click.argument("sweep_dir", type=click.Path(path_type=Path))
@click.argument("run_ids", nargs=-1)
@click.option("--index", type=int, help="Train the sweep's run number INDEX (an array task id).")
@clikit.handle_errors
def run_cmd(sweep_dir: Path, run_ids: tuple[str, ...], index: int | None) -> None:
    """Train runs of a sweep folder in this process (what a compute-node task does).

    \b
    Example:
      hpcjobs run results/moons hidden-3x5__seed-0
      hpcjobs run results/moons --index "$SLURM_ARRAY_TASK_ID"
    """
    if not run_ids and index is None:
        raise click.UsageError("give RUN_IDS or --index")
    outcomes = worker.run_here(layout.sweep_dir(sweep_dir), run_ids, index)
    for run_id, state in outcomes.items():
        click.echo(f"{run_id}: {state}")
    if any(s not in FINISHED for s in outcomes.values()):
        sys.exit(1)


def main() -> None:
    cli(prog_name="hpcjobs")
