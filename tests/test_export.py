"""export-sbatch: a plain array script, no pickles, running `hpcjobs run DIR --index $SLURM_ARRAY_TASK_ID`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcjobs import backends, layout, manifest, slurm, status, worker
from hpcjobs.cli import cli
from hpcjobs.spec import load_spec

from .conftest import EXAMPLES, assert_golden


def test_export_script_matches_golden_file() -> None:
    spec = load_spec(EXAMPLES / "digits_depth.toml")
    script = slurm.export_script(
        "/home/ada/results/digits-depth", spec.slurm, "hpcjobs-digits-depth", 24, "python3"
    )
    assert_golden(script, "export_digits_depth.sh")


def test_paths_with_shell_characters_stay_quoted() -> None:
    spec = load_spec(EXAMPLES / "moons.toml")
    root = "/home/ada/my results/$(touch pwned); x"
    last = slurm.export_script(root, spec.slurm, "hpcjobs-moons", 6, "python3").splitlines()[-1]
    assert last.startswith("srun --unbuffered --output '/home/ada/my results/$(touch pwned); x/submitit/")
    assert last.endswith(
        " python3 -m hpcjobs run '/home/ada/my results/$(touch pwned); x' "
        '--index "${SLURM_ARRAY_TASK_ID:-0}"'
    )


def test_exported_scripts_requeue_on_the_time_limit_without_submitit_leftovers() -> None:
    script = slurm.export_script(
        "/r/moons", load_spec(EXAMPLES / "moons.toml").slurm, "hpcjobs-moons", 6, "py"
    )
    lines = script.splitlines()
    assert {"#SBATCH --requeue", "#SBATCH --signal=USR2@120"} <= set(lines)
    assert lines[-1].startswith("srun ")  # USR2 without B: reaches job steps only
    assert "submitit" not in script.replace("/r/moons/submitit/", "")


def test_usr2_in_a_task_run_by_hand_requeues_it_and_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(worker.subprocess, "run", lambda args, **kw: calls.append(args))
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    before = signal.getsignal(signal.SIGUSR2)
    try:
        worker.requeue_on_time_limit()
        with pytest.raises(SystemExit):
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(1)  # the handler runs between bytecodes, well before this ends
    finally:
        signal.signal(signal.SIGUSR2, before)
    assert calls == [["scontrol", "requeue", "77_3"]]


def test_sbatch_options_from_the_sweep_file_are_quoted() -> None:
    settings = replace(load_spec(EXAMPLES / "moons.toml").slurm, additional=("--comment=a;b $(touch pwned)",))
    script = slurm.export_script("/r/moons", settings, "hpcjobs-moons", 6, "python3")
    assert "#SBATCH --comment='a;b $(touch pwned)'" in script.splitlines()


def test_export_writes_the_sweep_folder_and_a_private_script(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["export-sbatch", str(EXAMPLES / "moons.toml"), "--results", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    sweep = layout.sweep_dir("moons", tmp_path)
    assert (
        result.output.strip() == f"wrote {sweep.export_script}: submit it with `sbatch {sweep.export_script}`"
    )
    assert sweep.export_script.stat().st_mode & 0o777 == 0o700
    assert "#SBATCH --array=0-5%6" in sweep.export_script.read_text()
    assert len(manifest.read(sweep).run_ids) == 6
    assert manifest.read(sweep).submissions == []


def test_the_export_hint_quotes_a_path_the_shell_would_split(tmp_path: Path) -> None:
    results = tmp_path / "my results"
    result = CliRunner().invoke(
        cli, ["export-sbatch", str(EXAMPLES / "moons.toml"), "--results", str(results)]
    )
    assert result.exit_code == 0, result.output
    script = layout.sweep_dir("moons", results).export_script
    assert result.output.strip() == f"wrote {script}: submit it with `sbatch '{script}'`"


def test_runs_of_an_exported_array_that_have_not_started_are_pending_so_a_watch_waits(tmp_path: Path) -> None:
    """They were NOT_SUBMITTED, which counts as ended: `status --watch` stopped before the array ran."""
    CliRunner().invoke(cli, ["export-sbatch", str(EXAMPLES / "moons.toml"), "--results", str(tmp_path)])
    sweep = layout.sweep_dir("moons", tmp_path)
    first = manifest.read(sweep).run_ids[0]
    layout.write_json(sweep.result(first), {"status": "COMPLETED"})
    st = status.gather(sweep, backends.for_executor)
    assert st.counts == {"PENDING": 5, "COMPLETED": 1} and not st.done
    assert st.runs[1].note == "exported (sbatch.sh): waiting for its array task"


def test_run_index_out_of_range_is_one_line(tmp_path: Path) -> None:
    CliRunner().invoke(cli, ["export-sbatch", str(EXAMPLES / "moons.toml"), "--results", str(tmp_path)])
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "moons"), "--index", "6"])
    assert result.exit_code == 2
    assert result.output.strip() == "hpcjobs: error: --index 6 is out of range: expected 0..5 for sweep moons"


@pytest.mark.slurm
@pytest.mark.usefixtures("lab_slurm")
def test_exported_script_runs_on_the_lab_cluster(tmp_path: Path) -> None:
    sweep_file = tmp_path / "exp.toml"
    sweep_file.write_text(
        'name = "exp"\n[data]\nsource = "moons"\n[train]\nepochs = 2\n'
        "[sweep]\nseeds = [0, 1]\n[slurm]\ngpus_per_task = 1\ncpus_per_task = 1\nmem_gb = 1\n"
    )
    assert (
        CliRunner().invoke(cli, ["export-sbatch", str(sweep_file), "--results", str(tmp_path)]).exit_code == 0
    )
    sweep = layout.sweep_dir("exp", tmp_path)
    subprocess.run(["sbatch", str(sweep.export_script)], check=True, capture_output=True, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        st = status.gather(sweep, backends.for_executor)
        if st.counts == {"COMPLETED": 2}:
            break
        time.sleep(2)
    assert st.counts == {"COMPLETED": 2}
    assert all(
        json.loads(sweep.result(r).read_text())["epochs_done"] == 2 for r in manifest.read(sweep).run_ids
    )
