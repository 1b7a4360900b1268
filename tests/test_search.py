"""Successive halving: the rungs, the ranking of a rung, and promotion through a fake scheduler with
scripted results (no training here; tests/test_search_keras.py trains)."""

from __future__ import annotations

import itertools
import math
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import hpcjobs
from hpcjobs import backends, layout, manifest, search
from hpcjobs import sweep as sweeps
from hpcjobs.cli import cli
from hpcjobs.promote import drive, promote
from hpcjobs.slurm import JobRow
from hpcjobs.vocab import ACTIVE, RunState

# --- the plan ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("min_epochs", "eta", "budget", "expected"),
    [(2, 3, 20, [2, 6, 20]), (1, 3, 27, [1, 3, 9, 27]), (5, 2, 5, [5]), (3, 4, 10, [3, 10])],
)
def test_rung_epochs(min_epochs: int, eta: int, budget: int, expected: list[int]):
    assert search.rung_epochs(min_epochs, eta, budget) == expected


@given(min_epochs=st.integers(1, 50), eta=st.integers(2, 6), extra=st.integers(0, 500))
def test_rungs_grow_by_eta_up_to_the_budget(min_epochs: int, eta: int, extra: int):
    budget = min_epochs + extra
    rungs = search.rung_epochs(min_epochs, eta, budget)
    assert rungs[0] == min_epochs and rungs[-1] == budget
    for a, b in itertools.pairwise(rungs[:-1]):
        assert b == a * eta
    if len(rungs) > 1:
        assert rungs[-2] < budget < rungs[-2] * eta * eta


def _result(value: float | None, status: str = RunState.COMPLETED, direction: str = "max") -> dict[str, Any]:
    monitor = "val_categorical_accuracy" if direction == "max" else "val_loss"
    return {"status": status, "monitor": monitor, "direction": direction, "best": {monitor: value}}


def test_score_is_the_mean_over_seeds_in_the_objective_direction():
    assert search.score([_result(0.9), _result(0.7)]) == pytest.approx(0.8)
    assert search.score([_result(0.2, direction="min"), _result(0.4, direction="min")]) == pytest.approx(-0.3)


@pytest.mark.parametrize(
    "bad",
    [None, _result(0.9, RunState.FAILED), _result(0.9, RunState.DIVERGED), _result(None), _result(math.nan)],
)
def test_a_configuration_with_a_broken_seed_has_no_score(bad: Any):
    assert search.score([_result(0.9), bad]) is None


def test_rank_puts_unscored_configurations_last_in_their_order():
    assert search.rank({"a": None, "b": 0.5, "c": 0.9, "d": None, "e": 0.5}) == ["c", "b", "e", "a", "d"]


def _state(configs: int, seeds: int = 2) -> tuple[search.SearchState, dict[str, str]]:
    run_ids = [f"c{c}__seed-{s}" for c in range(configs) for s in range(seeds)]
    return search.start(1, 3, 9, run_ids), {r: r.split("__")[0] for r in run_ids}


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=1, max_size=20))
def test_promote_keeps_the_best_third_of_the_scored(values: list[float | None]):
    state, config_of = _state(len(values))
    results = {r: _result(values[int(config_of[r][1:])]) for r in config_of}
    decision = search.decide(state, {}, results, config_of)
    scored = sorted((v for v in values if v is not None), reverse=True)
    if not scored:
        assert decision.kind == "stop"
        return
    assert decision.kind == "promote"
    kept = {config_of[r] for r in decision.survivors}
    assert len(kept) == min(len(scored), search.keep(len(values), 3))
    worst_kept = min(values[int(c[1:])] for c in kept)  # type: ignore[type-var]
    assert all(v is None or v <= worst_kept for c, v in enumerate(values) if f"c{c}" not in kept)
    assert sorted(decision.survivors + decision.pruned) == sorted(config_of)


def test_decide_waits_for_busy_runs_and_stalls_on_lost_ones():
    state, config_of = _state(3)
    results = {r: _result(0.5) for r in config_of}
    busy = search.decide(state, {"c1__seed-0": RunState.RUNNING}, results, config_of)
    assert busy.kind == "wait" and "1 of 6 runs still have work" in busy.reason
    lost = search.decide(
        state, {"c2__seed-1": RunState.CANCELLED}, {**results, "c2__seed-1": None}, config_of
    )
    assert lost.kind == "stalled" and "CANCELLED c2__seed-1" in lost.reason and "resubmit" in lost.reason


def test_a_rung_that_failed_everywhere_stops_the_search_with_the_first_error():
    state, config_of = _state(2)
    failed = {**_result(None, RunState.FAILED), "error": "ValueError: bad input"}
    decision = search.decide(state, {}, {r: failed for r in config_of}, config_of)
    assert decision.kind == "stop" and "every configuration failed or diverged" in decision.reason
    assert "ValueError: bad input" in decision.reason


def test_the_last_rung_finishes_with_the_best_configuration():
    state, config_of = _state(3)
    state.rungs += [search.Rung(3, list(config_of)), search.Rung(9, list(config_of))]
    results = {r: _result(0.1 * (1 + int(config_of[r][1:])), direction="min") for r in config_of}
    decision = search.decide(state, {}, results, config_of)
    assert decision.kind == "finish" and decision.reason.endswith(
        "best configuration c0, mean val_loss 0.1000"
    )


def test_state_round_trips_through_json():
    state, _ = _state(2)
    state.rungs[0].ranking = [("c0", 0.5), ("c1", None)]
    state.rungs[0].jobs = ["12"]
    assert search.SearchState.from_json(state.to_json()) == state


# --- promotion through a fake scheduler --------------------------------------------------------------

SWEEP = """\
name = "halve"
[data]
source = "digits"
[train]
epochs = 9
[search]
method = "halving"
min_epochs = 1
eta = 3
[sweep]
"model.hidden" = [[4], [5], [6], [7], [8], [9], [10], [11], [12]]
seeds = [0, 1]
"""


def _finish(sweep: layout.SweepDir, run_ids: list[str], epochs: int) -> None:
    """What the worker leaves: result.json with the value at the best epoch (here: more units, better)."""
    for run_id in run_ids:
        units = int(run_id.split("__")[0].removeprefix("hidden-"))
        result = {**_result(units / 100 + epochs / 1000), "run_id": run_id, "epochs": epochs}
        layout.write_json(sweep.result(run_id), result)


def _submit(tmp_path: Path, fake: backends.FakeBackend) -> layout.SweepDir:
    path = tmp_path / "halve.toml"
    path.write_text(SWEEP)
    sweeps.submit(path, tmp_path / "r", fake, lambda _: fake)
    return layout.SweepDir(tmp_path / "r" / "halve")


def test_submit_starts_the_first_rung_and_a_dependent_promote(tmp_path: Path):
    fake = backends.FakeBackend()
    sweep = _submit(tmp_path, fake)
    state = search.read(sweep)
    assert state is not None and state.epochs == [1, 3, 9] and len(state.rungs[0].runs) == 18
    assert state.rungs[0].jobs == ["1000"] and state.rungs[0].promote_jobs == ["promote-1"]
    assert fake.followed == [["1000"]]
    config = layout.read_json(sweep.config("hidden-4__seed-0"))
    assert config["train"]["epochs"] == 1 and config["keep_backup"] is True
    man = manifest.read(sweep)
    assert {r.settings.train.epochs for r in man.runs} == {9}  # the manifest keeps the budget


def test_promotion_runs_the_search_to_its_end_and_is_safe_twice(tmp_path: Path):
    fake = backends.FakeBackend()
    sweep = _submit(tmp_path, fake)
    assert promote(sweep, lambda _: fake).decision.kind == "wait"  # nothing ran yet
    everyone = manifest.read(sweep).run_ids
    _finish(sweep, everyone, 1)

    first = promote(sweep, lambda _: fake)
    assert first.decision.kind == "promote"
    assert "rung 1 of 3 (1 epochs): 3 of 9 configurations promoted to 3 epochs" in first.decision.reason
    survivors = sorted(r for task in first.submissions[0].tasks for r in task)
    assert {r.split("__")[0] for r in survivors} == {"hidden-10", "hidden-11", "hidden-12"}
    for run_id in survivors:
        assert layout.read_json(sweep.config(run_id))["train"]["epochs"] == 3
        assert not sweep.result(run_id).exists() and sweep.previous_result(run_id).exists()
    pruned = layout.read_json(sweep.result("hidden-4__seed-1"))
    assert pruned["status"] == RunState.PRUNED and pruned["search"] == {"rung": 1, "was": "COMPLETED"}
    assert promote(sweep, lambda _: fake).decision.kind == "wait"  # twice: promoted once
    # The rung's packing estimate is kept beside it, for collect to add to the first rung's.
    assert (search.read(sweep).rungs[1].estimate_s or 0) > 0
    assert len(fake.submitted) == 2 and fake.followed[-1] == [first.submissions[0].job_id]

    _finish(sweep, survivors, 3)
    second = promote(sweep, lambda _: fake)
    assert {r.split("__")[0] for t in second.submissions[0].tasks for r in t} == {"hidden-12"}
    _finish(sweep, ["hidden-12__seed-0", "hidden-12__seed-1"], 9)
    last = promote(sweep, lambda _: fake)
    assert last.ended and "best configuration hidden-12" in last.decision.reason
    again = promote(sweep, lambda _: fake)
    assert again.decision.kind == "ended" and again.decision.reason == last.decision.reason
    state = search.read(sweep)
    assert state is not None and [len(r.runs) for r in state.rungs] == [18, 6, 2]
    assert state.rung_of()["hidden-12__seed-0"] == 2 and state.rung_of()["hidden-4__seed-0"] == 0
    assert len(fake.submitted) == 3


def test_a_run_failing_in_a_task_run_in_process_leaves_promotion_to_go_on(tmp_path: Path, monkeypatch):
    """FakeBackend(run=True) runs a task as a node would: once the command that submitted it has set aside
    the results it replaces. It used to run it inside `submit`, before that: a run that failed there had its
    fresh FAILED result set aside, stayed SUBMITTED, and every promote after waited for it."""
    failing = "hidden-4__seed-0"

    def train_run(sweep: layout.SweepDir, run_id: str, since: float) -> dict[str, Any]:
        if run_id == failing:
            raise RuntimeError("the node lost its GPU")
        _finish(sweep, [run_id], layout.read_json(sweep.config(run_id))["train"]["epochs"])
        return {"status": RunState.COMPLETED}

    no_keras = types.SimpleNamespace(train_run=train_run)
    monkeypatch.setitem(sys.modules, "hpcjobs.train", no_keras)
    monkeypatch.setattr(hpcjobs, "train", no_keras, raising=False)
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))  # the worker sets it
    fake = backends.FakeBackend(run=True)
    path = tmp_path / "halve.toml"
    path.write_text(SWEEP + "[slurm]\ntrials_per_gpu = 1\n")  # each task trains in this very process
    sweep = sweeps.submit(path, tmp_path / "r", fake, lambda _: fake).sweep
    assert layout.read_json(sweep.result(failing))["status"] == RunState.FAILED

    waits: list[None] = []

    def wait() -> None:  # the runs of a rung have ended when promote returns: a second wait would be forever
        waits.append(None)
        assert len(waits) <= 2, f"promote waits for runs that have ended: {promotions[-1].decision.reason}"

    promotions = []
    for promotion in drive(sweep, lambda _: fake, wait):
        promotions.append(promotion)
    assert [p.decision.kind for p in promotions] == ["promote", "promote", "finish"]
    assert "best configuration hidden-12" in promotions[-1].decision.reason


def test_a_cancelled_run_stalls_the_rung_until_resubmitted(tmp_path: Path):
    fake = backends.FakeBackend()
    sweep = _submit(tmp_path, fake)
    everyone = manifest.read(sweep).run_ids
    _finish(sweep, everyone[1:], 1)
    sub = manifest.read(sweep).submissions[0]
    task = next(i for i, t in enumerate(sub.tasks) if everyone[0] in t)
    fake.scripted[(sub.job_id, task)] = JobRow(RunState.CANCELLED)
    stalled = promote(sweep, lambda _: fake)
    assert stalled.decision.kind == "stalled" and not stalled.submissions
    outcome = sweeps.resubmit(sweep, "failed", lambda _: fake)
    assert outcome.to_submit == [everyone[0]]
    assert fake.followed[-1] == [outcome.submissions[0].job_id]  # resubmitted runs are followed too
    _finish(sweep, everyone[:1], 1)
    assert promote(sweep, lambda _: fake).decision.kind == "promote"


def test_promote_of_a_grid_sweep_is_one_line_exit_2(tmp_path: Path):
    path = tmp_path / "grid.toml"
    path.write_text('name = "grid"\n[data]\nsource = "digits"\n')
    fake = backends.FakeBackend()
    sweeps.submit(path, tmp_path / "r", fake, lambda _: fake)
    result = CliRunner().invoke(cli, ["promote", "grid", "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert (
        result.output
        == 'hpcjobs: error: grid is not a halving search: expected a sweep with search.method = "halving"\n'
    )


def test_export_sbatch_refuses_a_halving_search(tmp_path: Path):
    path = tmp_path / "halve.toml"
    path.write_text(SWEEP)
    result = CliRunner().invoke(cli, ["export-sbatch", str(path), "--results", str(tmp_path / "r")])
    assert result.exit_code == 2 and "export-sbatch trains every run once" in result.output
    assert not (tmp_path / "r" / "halve").exists()


def test_status_shows_each_runs_rung_and_the_stopped_ones(tmp_path: Path):
    from hpcjobs import render, status

    fake = backends.FakeBackend()
    sweep = _submit(tmp_path, fake)
    _finish(sweep, manifest.read(sweep).run_ids, 1)
    promote(sweep, lambda _: fake)
    st = status.gather(sweep, lambda _: fake)
    by_id = {r.run_id: r for r in st.runs}
    assert (by_id["hidden-4__seed-0"].state, by_id["hidden-4__seed-0"].rung) == (RunState.PRUNED, "1/3")
    assert (by_id["hidden-12__seed-0"].rung, by_id["hidden-12__seed-0"].epochs) == ("2/3", 3)
    assert st.counts[RunState.PRUNED] == 12 and st.search == "rung 2 of 3 (3 epochs, 6 runs)"
    text = render.to_text(render.status_table(st, None))
    assert "search: rung 2 of 3 (3 epochs, 6 runs)" in text and " rung " in text.splitlines()[2]


@pytest.mark.keras
def test_a_local_halving_search_runs_to_its_end_with_submit_wait(tmp_path: Path):
    path = tmp_path / "halve.toml"
    path.write_text(
        'name = "halve"\n[data]\nsource = "moons"\n[train]\nepochs = 3\n'
        '[search]\nmethod = "halving"\nmin_epochs = 1\neta = 3\n'
        '[sweep]\n"model.hidden" = [[2], [4], [8]]\n'
    )
    results = str(tmp_path / "r")
    runner = CliRunner()
    out = runner.invoke(cli, ["submit", str(path), "--executor", "local", "--results", results, "--wait"])
    assert out.exit_code == 0, out.output
    assert "rung 1 of 2 (1 epochs): 1 of 3 configurations promoted to 3 epochs" in out.output
    assert "halve: finished: best configuration hidden-" in out.output
    sweep = layout.SweepDir(tmp_path / "r" / "halve")
    state = search.read(sweep)
    assert state is not None and state.ended.startswith("finished")
    (winner,) = state.rungs[1].runs
    history = sweep.history(winner).read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2"]  # epochs 1..3, each once
    log = sweep.job_log(manifest.read(sweep).submissions[-1].job_id, "out").read_text()
    assert f"{winner} epoch 2/3" in log and "epoch 1/3" not in log  # continued from its backup
    for run_id in state.rungs[0].runs:
        if run_id != winner:
            assert layout.read_json(sweep.result(run_id))["status"] == RunState.PRUNED
            assert not sweep.backup_dir(run_id).exists()
    again = runner.invoke(cli, ["promote", "halve", "--results", results])
    assert again.exit_code == 0 and again.output == f"halve: {state.ended}\n"


def test_collect_ranks_by_the_highest_rung_reached_then_the_metric(tmp_path: Path):
    from hpcjobs import collect

    fake = backends.FakeBackend()
    sweep = _submit(tmp_path, fake)
    _finish(sweep, manifest.read(sweep).run_ids, 1)
    promote(sweep, lambda _: fake)
    survivors = search.read(sweep).rungs[-1].runs  # type: ignore[union-attr]
    # At 3 epochs the survivors score below what the pruned ones scored at 1: the rung still ranks first.
    for run_id in manifest.read(sweep).run_ids:
        units = int(run_id.split("__")[0].removeprefix("hidden-"))
        values = [0.01] * 3 if run_id in survivors else [units / 100]
        rows = "".join(f"{e},0.5,{v},0.3\n" for e, v in enumerate(values))
        sweep.history(run_id).write_text("epoch,loss,val_categorical_accuracy,val_loss\n" + rows)
    assert collect.best_config(collect.collect(sweep).summary) == 3  # rung 2 still training: rung 1's best
    _finish(sweep, survivors, 3)
    col = collect.collect(sweep)
    order = col.summary["config_id"].tolist()
    assert order[:3] == ["hidden-10", "hidden-11", "hidden-12"]  # rung 2, tied at 0.01: run order
    assert order[3:] == [f"hidden-{u}" for u in (9, 8, 7, 6, 5, 4)]  # rung 1, best first
    assert col.summary["rung"].tolist() == [2] * 3 + [1] * 6
    assert collect.best_config(col.summary) == 0
    assert col.summary.loc[3, "outcomes"] == "2 PRUNED"


def test_progress_is_the_best_score_per_rung_against_the_epochs_spent():
    state, config_of = _state(9)
    state.rungs[0].ranking = [("c8", 0.8), ("c7", 0.7), ("c0", None)]
    state.rungs.append(search.Rung(3, [r for r in config_of if config_of[r] in ("c8", "c7", "c6")]))
    state.rungs[1].ranking = [("c7", 0.9), ("c8", 0.85)]
    state.rungs.append(search.Rung(9, ["c7__seed-0", "c7__seed-1"]))  # in flight: not ranked yet
    assert search.progress(state) == [(18, 0.8, "c8"), (18 + 6 * 2, 0.9, "c7")]


def test_plots_of_a_search_draw_the_search_and_stopped_configurations_thinner(tmp_path: Path):
    from hpcjobs import collect, plots

    fake = backends.FakeBackend()
    sweep = _submit(tmp_path, fake)
    for epochs in (1, 3, 9):
        state = search.read(sweep)
        assert state is not None
        for run_id in state.rungs[-1].runs:
            units = int(run_id.split("__")[0].removeprefix("hidden-"))
            rows = "".join(f"{e},0.5,{units / 100 + e / 1000},0.3\n" for e in range(epochs))
            sweep.history(run_id).write_text("epoch,loss,val_categorical_accuracy,val_loss\n" + rows)
        _finish(sweep, state.rungs[-1].runs, epochs)
        promote(sweep, lambda _: fake)
    col = collect.collect(sweep)
    fig = plots.learning_curves(col, "val_categorical_accuracy", "t")
    widths = {line.get_label(): line.get_linewidth() for line in fig.axes[1].get_lines()}
    assert widths["12"] == 1.4 and widths["4"] == 0.6
    written = plots.write_plots(sweep, col)
    assert sweep.plot("search") in written and sweep.plot("search").stat().st_size > 0


def test_a_refused_follow_up_is_a_warning_and_the_rung_stays_recorded(tmp_path: Path):
    from hpcjobs.scheduler import BackendError

    class NoFollower(backends.FakeBackend):
        def follow_up(self, sweep: Any, after: Any, settings: Any) -> str:
            raise BackendError("'sbatch --parsable' failed: slurmctld down")

    fake = NoFollower()
    path = tmp_path / "halve.toml"
    path.write_text(SWEEP)
    outcome = sweeps.submit(path, tmp_path / "r", fake, lambda _: fake)
    assert outcome.warning.startswith("'sbatch --parsable' failed: slurmctld down: no job will promote")
    assert "run `hpcjobs promote halve` when jobs 1000 end" in outcome.warning
    sweep = layout.SweepDir(tmp_path / "r" / "halve")
    state = search.read(sweep)
    assert state is not None and state.rungs[0].jobs == ["1000"] and not state.rungs[0].promote_jobs
    assert promote(sweep, lambda _: fake).decision.kind == "wait" and len(fake.submitted) == 1


# --- watching a search on a scheduler that promotes it --------------------------------------------------


def test_a_watch_follows_a_slurm_search_across_its_rungs_to_its_end(tmp_path: Path):
    """Between rungs every run has ended but the dependent promote job has not run yet: the watch (status
    --watch, submit --wait) used to stop there, exit 0, with `18 runs COMPLETED 18` and two rungs to come."""
    from hpcjobs import watching

    fake = backends.FakeBackend()
    sweep = _submit(tmp_path, fake)
    lines: list[str] = []
    for seen in watching.poll(sweep, lambda _: fake, 0.0, 0.0):
        lines.append(seen.search)
        assert len(lines) < 20, lines
        state = search.read(sweep)
        assert state is not None
        if seen.done:
            continue  # the last refresh: poll returns after it
        if any(r.state in ACTIVE for r in seen.runs):  # the rung's array trains its runs
            _finish(sweep, state.rungs[-1].runs, state.rungs[-1].epochs)
            sub = fake.submitted[-1]
            fake.scripted |= {(sub.job_id, i): JobRow(RunState.COMPLETED) for i in range(len(sub.tasks))}
        else:  # the rung's promote job starts: it ranks the rung and submits the next one
            assert seen.search_waits and not seen.done
            promote(sweep, lambda _: fake)
            fake.scripted |= {(job, 0): JobRow(RunState.COMPLETED) for job in state.rungs[-1].promote_jobs}
    assert lines[1] == "rung 1 of 3 ended: waiting for rung 2 (3 epochs, promote job promote-1)"
    assert lines[-2] == "rung 3 of 3 ended: waiting for promote job promote-3 to rank it"
    assert lines[-1].startswith("finished: best configuration hidden-12")


def test_a_watch_stops_when_no_promote_job_will_go_on(tmp_path: Path):
    from hpcjobs import status

    fake = backends.FakeBackend()
    sweep = _submit(tmp_path, fake)
    _finish(sweep, manifest.read(sweep).run_ids, 1)
    fake.scripted = {("1000", i): JobRow(RunState.COMPLETED) for i in range(18)}
    fake.scripted[("promote-1", 0)] = JobRow(RunState.FAILED)  # e.g. no hpcjobs on the node's PATH
    st = status.gather(sweep, lambda _: fake)
    assert st.done and st.search == (
        "rung 1 of 3 ended and its promote job promote-1 ended without promoting it: "
        "run `hpcjobs promote halve`"
    )


def test_plan_says_each_rungs_runs_and_epochs():
    assert search.plan(27, 2, 2, 3, 54) == [
        "halving search, the best 1/3 of each rung go on:",
        "  rung 1: 54 runs (27 configurations × 2 seeds) to epoch 2",
        "  rung 2: 18 runs (9 configurations × 2 seeds) to epoch 6",
        "  rung 3: 6 runs (3 configurations × 2 seeds) to epoch 18",
        "  rung 4: 2 runs (1 configuration × 2 seeds) to epoch 54",
    ]


@pytest.mark.parametrize("dry_run", [True, False])
def test_submit_and_its_dry_run_tell_every_rung_and_the_dependent_promote_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool
):
    fake = backends.FakeBackend()
    monkeypatch.setattr(backends, "auto", lambda executor="auto": fake)
    monkeypatch.setattr(backends, "for_executor", lambda executor: fake)
    path = tmp_path / "halve.toml"
    path.write_text(SWEEP)
    args = ["submit", str(path), "--results", str(tmp_path / "r"), *(["--dry-run"] if dry_run else [])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    follows = "" if dry_run else " (job promote-1 follows rung 1)"
    assert result.stdout.endswith(
        "halve: halving search, the best 1/3 of each rung go on:\n"
        "  rung 1: 18 runs (9 configurations × 2 seeds) to epoch 1\n"
        "  rung 2: 6 runs (3 configurations × 2 seeds) to epoch 3\n"
        "  rung 3: 2 runs (1 configuration × 2 seeds) to epoch 9\n"
        "  after each rung a dependent job runs `hpcjobs promote halve`:\n"
        f"  it ranks the rung and submits the next{follows}\n"
    )
