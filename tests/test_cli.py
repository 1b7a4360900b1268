"""The command line: help for every command, exact exit codes, one-line errors, light login-node imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcjobs import layout, manifest
from hpcjobs.cli import cli
from hpcjobs.settings import Run
from hpcjobs.spec import expand, load_spec
from hpcjobs.vocab import Submission

from .conftest import EXAMPLES


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example:" in result.output, f"'hpcjobs {name} --help' shows no example"
        assert command.help and command.help.strip(), name


def submitted_sweep(root: Path, toml: str) -> tuple[layout.SweepDir, list[Run]]:
    """An example sweep submitted on the fake executor, one run per task, written the way submit writes it."""
    spec = load_spec(EXAMPLES / toml)
    runs = expand(spec)
    sweep = layout.SweepDir(root / spec.name)
    layout.make_private_dir(sweep.root)
    man = manifest.Manifest.new(spec.name, spec.backend, runs, spec.slurm)
    man.submissions.append(Submission("fake", "1000", [[r.run_id] for r in runs]))
    manifest.write(sweep, man)
    return sweep, runs


def _fake_sweep(root: Path) -> layout.SweepDir:
    """The moons sweep submitted on the fake executor, one run finished."""
    sweep, runs = submitted_sweep(root, "moons.toml")
    first = runs[0].run_id
    layout.write_text(
        sweep.history(first),
        "epoch,categorical_accuracy,loss,val_categorical_accuracy,val_loss\n"
        "0,0.5,0.7,0.55,0.69\n1,0.8,0.4,0.85,0.38\n",
    )
    layout.write_json(
        sweep.result(first),
        {"status": "COMPLETED", "params": 38, "test": {"accuracy": 0.8, "f1_macro": 0.79}},
    )
    return sweep


def test_status_json_reports_disk_state(tmp_path: Path) -> None:
    sweep = _fake_sweep(tmp_path)
    result = CliRunner().invoke(cli, ["status", "moons", "--results", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"] == {"SUBMITTED": 5, "COMPLETED": 1}
    first = data["runs"][0]
    assert (first["state"], first["epochs_done"], first["value"]) == ("COMPLETED", 2, 0.85)
    assert sweep.root.name == data["name"]


def test_status_without_name_lists_sweeps(tmp_path: Path) -> None:
    _fake_sweep(tmp_path)
    result = CliRunner().invoke(cli, ["status", "--results", str(tmp_path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == [{"name": "moons", "counts": {"SUBMITTED": 5, "COMPLETED": 1}}]


def test_unknown_sweep_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "nope", "--results", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("hpcjobs: error: no sweep 'nope'")


def test_a_mistyped_sweep_name_gets_the_closest_one(tmp_path: Path) -> None:
    _fake_sweep(tmp_path)
    result = CliRunner().invoke(cli, ["status", "moon", "--results", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith("hpcjobs: error: no sweep 'moon' (did you mean 'moons'?): expected ")


def test_status_of_a_sweep_file_asks_for_the_sweeps_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["status", str(EXAMPLES / "digits_depth.toml"), "--results", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert result.output == (
        "hpcjobs: error: expected a sweep's name such as 'digits-depth' (the name = of its sweep file) or "
        f"its results folder; received the sweep file path '{EXAMPLES / 'digits_depth.toml'}'\n"
    )


def test_an_unknown_sweep_axis_gets_a_did_you_mean(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[data]\nsource = "digits"\n[sweep]\n"model.hidden_units" = [[3]]\n')
    result = CliRunner().invoke(cli, ["submit", str(bad), "--dry-run", "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert (
        "unknown key 'sweep.\"model.hidden_units\"' (did you mean 'model.hidden'?): expected" in result.output
    )


def test_bad_sweep_file_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[data]\nsource = "digits"\n[model]\nhiden = [3]\n')
    results = tmp_path / "results"
    result = CliRunner().invoke(cli, ["submit", str(bad), "--executor", "local", "--results", str(results)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "unknown key 'model.hiden' (did you mean 'model.hidden'?): expected one of " in result.output
    assert not results.exists()


def test_dry_run_lists_runs_and_writes_nothing(tmp_path: Path) -> None:
    results = tmp_path / "results"
    result = CliRunner().invoke(
        cli,
        [
            "submit",
            str(EXAMPLES / "digits_depth.toml"),
            "--dry-run",
            "--executor",
            "local",
            "--results",
            str(results),
        ],
    )
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("digits-depth: would submit 24 runs as 2 local tasks × 12 runs; ~")
    # the estimate's parts: no earlier results here, so the measured defaults (packplan, measured)
    assert "s: start-up ~10 s a process, ~6.8 s a run; CPU, 2 processes (dry run" in first
    assert "hidden-20x50x70x100x70x50x20__learning_rate-0.001__seed-0" in result.output
    assert not results.exists()


@pytest.mark.parametrize("command", ["status", "collect"])
def test_login_node_commands_import_no_deep_learning(tmp_path: Path, command: str) -> None:
    _fake_sweep(tmp_path)
    code = (
        "import sys\n"
        "from hpcjobs.cli import main\n"
        f"sys.argv = ['hpcjobs', '{command}', 'moons', '--results', {str(tmp_path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch')]\n"
        "assert not heavy, heavy\n"
        f"assert {command == 'collect'} or 'pandas' not in sys.modules, 'status imported pandas'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_status_of_a_large_sweep_lists_the_urgent_runs_and_counts_the_rest(tmp_path: Path) -> None:
    from hpcjobs import render, status
    from hpcjobs.render import to_text

    runs = [
        status.RunStatus(f"r{i}", "c", 0, s, 0, 3, "", None, "", "")
        for i, s in enumerate(["COMPLETED", "COMPLETED", "FAILED", "PENDING"])
    ]
    text = to_text(render.status_table(status.SweepStatus("big", runs), limit=2))
    assert "r2 " in text and "r3 " in text and "r0 " not in text  # failed, then still to come
    assert "… and 2 more (COMPLETED 2): --all lists every run" in text


def test_watch_returns_once_every_run_has_ended(tmp_path: Path) -> None:
    sweep = _fake_sweep(tmp_path)
    for run_id in manifest.read(sweep).run_ids:
        layout.write_json(sweep.result(run_id), {"status": "COMPLETED"})
    result = CliRunner().invoke(cli, ["status", "moons", "--results", str(tmp_path), "--watch"])
    assert result.exit_code == 0, result.output
    assert "moons: 6 runs  COMPLETED 6" in result.output


@pytest.mark.parametrize(
    ("sizes", "parallel", "executor", "plan"),
    [
        (
            [4] * 6,
            2,
            "slurm",
            "24 runs as 6 array tasks × 2 processes × 2 runs",
        ),
        ([1], 8, "slurm", "1 run as 1 array task"),
        (
            [8, 8, 3],
            8,
            "slurm",
            "19 runs as 3 array tasks × 8 processes (the last task 3 runs)",
        ),
        ([3, 3], 8, "local", "6 runs as 2 local tasks × 3 runs"),
        ([], 1, "slurm", "0 runs as 0 array tasks"),
    ],
)
def test_packing_plan_says_how_runs_were_packed(sizes, parallel, executor, plan) -> None:
    from hpcjobs import render

    tasks = [[f"r{i}-{j}" for j in range(n)] for i, n in enumerate(sizes)]
    assert render.packing_plan(tasks, parallel, executor) == plan


def test_a_dry_run_with_nothing_to_submit_says_why(tmp_path: Path) -> None:
    sweep = _fake_sweep(tmp_path)
    for run_id in manifest.read(sweep).run_ids:
        layout.write_json(sweep.result(run_id), {"status": "COMPLETED"})
    layout.write_text(sweep.sweep_file, (EXAMPLES / "moons.toml").read_text())
    args = [
        "submit",
        str(EXAMPLES / "moons.toml"),
        "--dry-run",
        "--executor",
        "local",
        "--results",
        str(tmp_path),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output == "moons: nothing to submit: every run is finished or in flight (COMPLETED 6)\n"
