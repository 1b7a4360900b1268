"""Slurm knowledge on literal text: time limits, executor parameters, arrays, sacct, squeue, sbatch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpcjobs import backends, slurm
from hpcjobs.layout import SweepDir
from hpcjobs.scheduler import BackendError
from hpcjobs.settings import SlurmSettings
from hpcjobs.slurm import JobRow
from hpcjobs.spec import load_spec

from .conftest import EXAMPLES, assert_golden

# The [slurm] table of examples/digits_depth.toml with the defaults filled in.
DIGITS_SLURM: dict[str, Any] = {
    "partition": "gpu",
    "time": "00:20:00",
    "gpus_per_task": 1,
    "gpu_request": "gpus-per-node",
    "cpus_per_task": 2,
    "mem_gb": 8,
    "array_parallelism": 16,
    "trials_per_gpu": "auto",
    "runs_per_task": "auto",
    "account": "",
    "qos": "",
    "constraint": "",
    "additional": [],
}

BASE_PARAMS = {
    "job_name": "hpcjobs-digits-depth",
    "time": 20,
    "cpus_per_task": 2,
    "mem": "8192M",
    "ntasks_per_node": 1,
    "array_parallelism": 16,
    "signal_delay_s": 120,
    "partition": "gpu",
}


def _params(**changes: Any) -> dict[str, Any]:
    table = SlurmSettings.from_dict({**DIGITS_SLURM, **changes})
    return slurm.executor_parameters(table, "hpcjobs-digits-depth")


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("20", 20),  # MM
        ("1:30", 2),  # MM:SS, rounded up
        ("0:30", 1),
        ("00:20:00", 20),  # HH:MM:SS
        ("02:00:01", 121),
        ("00:00:30", 1),
        ("1-00:00:00", 1440),  # D-HH:MM:SS
        ("2-12", 3600),  # D-HH
        ("1-2:30", 1590),  # D-HH:MM
        ("0-00:00:59", 1),
    ],
)
def test_time_to_minutes(text: str, minutes: int) -> None:
    assert slurm.time_to_minutes(text) == minutes


def test_digits_example_slurm_table_is_what_the_spec_gives() -> None:
    assert load_spec(EXAMPLES / "digits_depth.toml").slurm.to_dict() == DIGITS_SLURM


def test_gpus_per_node_request() -> None:
    assert _params() == {**BASE_PARAMS, "gpus_per_node": 1}


def test_gres_request() -> None:
    assert _params(gpu_request="gres", gpus_per_task=2) == {**BASE_PARAMS, "gres": "gpu:2"}


def test_gpus_request_goes_through_additional_parameters() -> None:
    assert _params(gpu_request="gpus") == {**BASE_PARAMS, "additional_parameters": {"gpus": 1}}


@pytest.mark.parametrize("form", ["gpus-per-node", "gres", "gpus"])
def test_no_gpu_keys_without_gpus(form: str) -> None:
    assert _params(gpu_request=form, gpus_per_task=0) == BASE_PARAMS


def test_partition_account_qos_constraint_only_when_set() -> None:
    params = _params(partition="", gpus_per_task=0)
    assert not {"partition", "account", "qos", "constraint"} & set(params)
    params = _params(account="lab", qos="short", constraint="a100")
    assert (params["partition"], params["account"], params["qos"], params["constraint"]) == (
        "gpu",
        "lab",
        "short",
        "a100",
    )


def test_additional_options_become_additional_parameters() -> None:
    params = _params(additional=["--mail-type=END", "--exclusive"])
    assert params["additional_parameters"] == {"mail_type": "END", "exclusive": True}


def test_fractional_memory_in_megabytes() -> None:
    assert _params(mem_gb=0.5)["mem"] == "512M"


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({}, "#SBATCH --gpus-per-node=1"),
        ({"gpu_request": "gres"}, "#SBATCH --gres=gpu:1"),
        ({"gpu_request": "gpus"}, "#SBATCH --gpus=1"),
        ({"additional": ["--mail-type=END"]}, "#SBATCH --mail-type=END"),
        ({"additional": ["--exclusive"]}, "#SBATCH --exclusive"),
        ({"qos": "short"}, "#SBATCH --qos=short"),
    ],
)
def test_each_request_form_reaches_the_sbatch_script(changes: dict[str, Any], line: str) -> None:
    script = slurm.sbatch_script("/s/submitit", _params(**changes), n_tasks=3, python="python3")
    assert line in script.splitlines()


def test_single_task_is_a_plain_job_without_array() -> None:
    script = slurm.sbatch_script("/s/submitit", _params(), n_tasks=1, python="python3")
    assert not [ln for ln in script.splitlines() if ln.startswith("#SBATCH --array")]


def test_chunks_respect_max_array_size() -> None:
    tasks = [[f"run-{i}"] for i in range(30)]
    parts = list(slurm.chunks(tasks, 11))
    assert [len(p) for p in parts] == [11, 11, 8]
    assert [t for p in parts for t in p] == tasks


def test_chunks_of_nothing() -> None:
    assert list(slurm.chunks([], 11)) == []


SHOW_CONFIG = """\
Configuration data as of 2024-05-02T10:15:03
AccountingStorageBackupHost = (null)
AccountingStorageType   = accounting_storage/slurmdbd
MaxArraySize            = 11
MaxJobCount             = 10000
MaxStepCount            = 40000
"""


def test_max_array_size_from_scontrol_show_config() -> None:
    assert slurm.max_array_size(SHOW_CONFIG) == 11


def test_max_array_size_defaults_to_1001() -> None:
    assert slurm.max_array_size("MaxJobCount             = 10000\n") == 1001
    assert slurm.max_array_size("") == 1001


SACCT = """\
123_0|COMPLETED|0:0|00:03:12
123_[1-3%2]|PENDING|0:0|00:00:00
123_4|CANCELLED by 0|0:15|00:00:41
123_4.batch|CANCELLED|0:15|00:00:41
123_4.extern|COMPLETED|0:0|00:00:41
123_5|OUT_OF_MEMORY|0:125|00:01:02
123_6|TIMEOUT|0:0|00:20:01
123_7|NODE_FAIL|1:0|00:05:00
123_8|REQUEUED|0:0|00:02:00
123_9|PREEMPTED|0:15|00:07:30
77|COMPLETED|0:0|00:00:09

"""


def test_parse_sacct() -> None:
    assert slurm.parse_sacct(SACCT) == {
        ("123", 0): JobRow("COMPLETED", "0:0", "00:03:12"),
        ("123", 1): JobRow("PENDING", "0:0", "00:00:00"),
        ("123", 2): JobRow("PENDING", "0:0", "00:00:00"),
        ("123", 3): JobRow("PENDING", "0:0", "00:00:00"),
        ("123", 4): JobRow("CANCELLED", "0:15", "00:00:41"),
        ("123", 5): JobRow("OUT_OF_MEMORY", "0:125", "00:01:02"),
        ("123", 6): JobRow("TIMEOUT", "0:0", "00:20:01"),
        ("123", 7): JobRow("NODE_FAIL", "1:0", "00:05:00"),
        ("123", 8): JobRow("REQUEUED", "0:0", "00:02:00"),
        ("123", 9): JobRow("PREEMPTED", "0:15", "00:07:30"),
        ("77", 0): JobRow("COMPLETED", "0:0", "00:00:09"),
    }


def test_parse_sacct_comma_list_of_pending_tasks() -> None:
    rows = slurm.parse_sacct("9_[0,2-3]|PENDING|0:0|00:00:00\n")
    assert sorted(rows) == [("9", 0), ("9", 2), ("9", 3)]


def test_parse_sacct_ignores_short_lines_and_empty_text() -> None:
    assert slurm.parse_sacct("") == {}
    assert slurm.parse_sacct("123_0|RUNNING\n") == {}


def test_parse_squeue() -> None:
    text = "55_[0-4%2]|PD|JobArrayTaskLimit\n55_7|R|None\n56|CG|None\n"
    pending = JobRow("PENDING", reason="JobArrayTaskLimit")
    assert slurm.parse_squeue(text) == {
        ("55", 0): pending,
        ("55", 1): pending,
        ("55", 2): pending,
        ("55", 3): pending,
        ("55", 4): pending,
        ("55", 7): JobRow("RUNNING", reason="None"),
        ("56", 0): JobRow("COMPLETING", reason="None"),
    }


def test_parse_squeue_keeps_unknown_codes() -> None:
    assert slurm.parse_squeue("8_1|XX|\n") == {("8", 1): JobRow("XX")}


# --- golden sbatch script ---------------------------------------------------------------------------


def _digits_depth_script() -> str:
    params = slurm.executor_parameters(
        load_spec(EXAMPLES / "digits_depth.toml").slurm, "hpcjobs-digits-depth"
    )
    return slurm.sbatch_script(
        folder="/sweeps/digits-depth/submitit", params=params, n_tasks=18, python="python3"
    )


def test_sbatch_script_matches_golden_file() -> None:
    assert_golden(_digits_depth_script(), "sbatch_digits_depth.txt")


def test_sbatch_script_asks_for_what_the_sweep_needs() -> None:
    lines = _digits_depth_script().splitlines()
    for line in (
        "#!/bin/bash",
        "#SBATCH --array=0-17%16",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --signal=USR2@120",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=20",
        "#SBATCH --mem=8192M",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --job-name=hpcjobs-digits-depth",
        "#SBATCH --output=/sweeps/digits-depth/submitit/%A_%a_0_log.out",
        "#SBATCH --error=/sweeps/digits-depth/submitit/%A_%a_0_log.err",
    ):
        assert line in lines
    assert lines[-1].endswith("python3 -u -m submitit.core._submit /sweeps/digits-depth/submitit")


# --- SlurmBackend.submit against a fake sbatch -----------------------------------------------------------


def test_a_refused_sbatch_is_one_error_and_leaves_no_pickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """submitit printed sbatch's stderr beside hpcjobs' one-line error, and left its pickles and script."""
    sbatch = tmp_path / "bin" / "sbatch"
    sbatch.parent.mkdir()
    sbatch.write_text(
        "#!/bin/sh\necho 'sbatch: error: MaxJobCount reached' >&2\n"
        "echo 'sbatch: error: Batch job submission failed: Resource temporarily unavailable' >&2\nexit 1\n"
    )
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{sbatch.parent}:/usr/bin:/bin")
    sweep = SweepDir(tmp_path / "sweep")
    backend = backends.SlurmBackend(_config="MaxArraySize = 1001\n")
    settings = SlurmSettings(trials_per_gpu=1, runs_per_task=1)
    with pytest.raises(BackendError) as refused:
        list(backend.submit(sweep, [["a"], ["b"]], settings))
    assert str(refused.value) == (
        "sbatch refused the sweep: "
        "sbatch: error: Batch job submission failed: Resource temporarily unavailable"
    )
    assert capsys.readouterr().err == ""
    assert list(sweep.submitit_dir.iterdir()) == []
