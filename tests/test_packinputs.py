"""Packing's inputs read on literal text: sinfo, sacctmgr and squeue output, and earlier result.json files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hpcjobs import backends, layout, measured, packplan, slurm
from hpcjobs.packplan import Room
from hpcjobs.settings import DataSettings, ModelSettings, Run, Settings, SlurmSettings, TrainSettings
from hpcjobs.slurm import Limits

# `sinfo -h -N -o '%P|%n|%G|%c|%t'` on the lab cluster (slurm/start.sh) and on a larger site.
LAB_SINFO = "gpu*|lab|gpu:2|4|idle\ncpu|lab|gpu:2|4|idle\n"
SITE_SINFO = """\
gpu|g01|gpu:a100:4(S:0-1)|64|mix
gpu|g02|gpu:a100:4(S:0-1)|64|alloc
gpu|g03|gpu:a100:4(S:0-1)|64|drain
gpu|g04|gpu:a100:4(S:0-1)|64|idle*
gpu|g05|gpu:tesla:2,mps:200|32|idle
cpu*|c01|(null)|128|idle
"""


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [
        ("gpu:2", 2),
        ("gpu:a100:4(S:0-1)", 4),
        ("gpu:tesla:2,mps:200", 2),
        ("(null)", 0),
        ("gpu:a:1,gpu:b:2", 3),
    ],
)
def test_gres_gpus(gres: str, gpus: int) -> None:
    assert slurm.gres_gpus(gres) == gpus


def test_parse_sinfo_counts_the_gpus_of_nodes_that_take_jobs() -> None:
    assert slurm.parse_sinfo(LAB_SINFO, "") == ("gpu", 2, 4)  # the default partition, marked '*'
    assert slurm.parse_sinfo(LAB_SINFO, "gpu") == ("gpu", 2, 4)
    # drained and not-responding ('*') nodes left out
    assert slurm.parse_sinfo(SITE_SINFO, "gpu") == ("gpu", 10, 160)
    assert slurm.parse_sinfo(SITE_SINFO, "") == ("cpu", 0, 128)
    assert slurm.parse_sinfo(SITE_SINFO, "bigmem") is None
    assert slurm.parse_sinfo("", "gpu") is None


@pytest.mark.parametrize(
    ("tres", "gpus"),
    [
        ("cpu=8,gres/gpu=4", 4),
        ("gres/gpu:a100=2,gres/gpu:v100=1", 3),
        ("gres/gpu=4,gres/gpu:a100=2", 4),
        ("", None),
        ("cpu=8", None),
    ],
)
def test_tres_gpus(tres: str, gpus: int | None) -> None:
    assert slurm.tres_gpus(tres) == gpus


# `sacctmgr -n -P show assoc where user=ana format=Partition,DefaultQOS,MaxJobs,GrpTRES`
ASSOC = "|normal|||\ngpu|gpu4|10|gres/gpu=8\nbigmem|normal|1|\n"
# `sacctmgr -n -P show qos format=Name,MaxTRESPerUser,MaxJobsPerUser`
QOS = "normal|||\ngpu4|gres/gpu=4|6\nhigh|cpu=64|\n"


def test_the_tightest_of_association_and_qos_limits() -> None:
    got = slurm.limits("gpu", SITE_SINFO, ASSOC, QOS, "", "8_1\n8_2\n9\n")
    assert got == Limits("gpu", gpus=10, user_gpus=4, max_jobs=6, pending=3, cpus=160)
    # the sweep's own QOS wins over the association's default
    assert slurm.limits("gpu", SITE_SINFO, ASSOC, QOS, "high", "").user_gpus == 8


def test_limits_fall_back_quietly_when_a_command_could_not_run() -> None:
    assert slurm.limits("gpu", None, None, None, "", None) == Limits("gpu")
    assert slurm.limits("", LAB_SINFO, "", "", "", None) == Limits("gpu", gpus=2, cpus=4)
    assert slurm.limits("", "garbled\n", "x|y\n", "?\n", "", "") == Limits("", pending=0)


def run(source: str = "digits", epochs: int = 20) -> Run:
    settings = Settings(DataSettings(source), ModelSettings(), TrainSettings(epochs=epochs))
    return Run("r", "c", 0, settings)


def result(**values: Any) -> dict[str, Any]:
    base = {"backend": "tensorflow", "params": 6_570, "device": "cpu", "reused_model": False}
    base["config"] = {"data": {"source": values.pop("source", "digits")}}
    return {**base, **values}


def test_start_up_is_the_upper_decile_of_compiled_runs() -> None:
    rows = [result(startup_seconds=s) for s in (2.0, 2.5, 3.0, 2.2, 2.4, 2.1, 2.3, 2.6, 2.7, 2.8, 18.0, 19.0)]
    rows += [result(startup_seconds=0.3, reused_model=True)] * 20
    got = measured.from_results(rows)
    assert (got.startup_s, got.gpu, got.results) == (18.0, False, 32)
    assert measured.from_results([]) == measured.Measured()
    assert measured.from_results([result(device="NVIDIA H200", startup_seconds=9.0)]).gpu is True


def test_an_epoch_takes_what_was_measured_for_its_data_and_size() -> None:
    rows = [result(seconds_per_epoch=s, samples_per_second=9_000.0) for s in (0.10, 0.12, 0.14)]
    assert measured.epoch_seconds(run(), 6_570, rows) == pytest.approx(0.12)
    # another dataset: its training rows at the samples/s of a model of like size
    assert measured.epoch_seconds(run("mnist"), 6_570, rows) == pytest.approx(70_000 * 0.7 / 9_000)
    # a model 10x larger: nothing alike measured, the conservative default
    assert measured.epoch_seconds(run("mnist"), 65_700, rows) == pytest.approx(70_000 * 0.7 / 4_000)
    assert measured.epoch_seconds(run("data.npz"), 65_700, []) == pytest.approx(70_000 * 0.7 / 4_000)
    # A large model with nothing measured: bound by its weights, not by the small models' rate.
    wide = 784 * 2048 + 2048 * 2048 + 2048 * 10 + 2048 * 2 + 10
    assert measured.epoch_seconds(run("mnist5k"), wide, []) == pytest.approx(5_000 * 0.7 / (4.8e9 / wide))


def test_read_results_takes_one_backends_results_and_passes_over_the_unreadable(tmp_path: Path) -> None:
    sweep = layout.SweepDir(tmp_path / "s")
    sweep.root.mkdir()
    sweep.manifest.write_text("{}")
    for run_id, row in [
        ("a", result(startup_seconds=3.0)),
        ("b", result(backend="jax", startup_seconds=1.0)),
    ]:
        sweep.run_dir(run_id).mkdir(parents=True)
        sweep.result(run_id).write_text(json.dumps(row))
    sweep.run_dir("c").mkdir()
    sweep.result("c").write_text("{not json")
    sweep.run_dir("d").mkdir()
    sweep.result("d").write_text(json.dumps({"status": "FAILED", "backend": "tensorflow"}))
    assert [r["startup_seconds"] for r in measured.read_results(tmp_path, "tensorflow")] == [3.0]
    assert measured.read_results(tmp_path / "missing", "tensorflow") == []


def test_the_room_says_what_limits_the_slots() -> None:
    table = SlurmSettings(partition="gpu", array_parallelism=16)
    room = backends.slurm_room(table, Limits("gpu", gpus=10, user_gpus=4, max_jobs=6, pending=0))
    assert room == Room(4, "10 GPUs in 'gpu', 4 yours at most", packplan.QUEUE_S)
    busy = backends.slurm_room(table, Limits("gpu", gpus=2, pending=7))
    assert busy == Room(2, "2 GPUs in 'gpu', 7 jobs pending", packplan.BUSY_QUEUE_S)
    unknown = backends.slurm_room(table, Limits("gpu"))
    assert unknown == Room(16, "16 tasks at once", packplan.QUEUE_S)
    # Tasks without GPUs: the partition's CPUs bound them (moons on the lab cluster had planned 16 at once
    # on its 4 CPUs, each task paying a process's start-up on cores the others held).
    cpu_only = SlurmSettings(partition="gpu", array_parallelism=16, gpus_per_task=0, cpus_per_task=1)
    lab = backends.slurm_room(cpu_only, slurm.limits("", LAB_SINFO, "", "", "", ""))
    assert lab == Room(4, "4 tasks at once (4 CPUs in 'gpu')", packplan.QUEUE_S)
    two_cpus = replace(cpu_only, cpus_per_task=2)
    assert backends.slurm_room(two_cpus, slurm.limits("", LAB_SINFO, "", "", "", "")).slots == 2


def test_slurm_limits_fall_back_quietly_without_the_slurm_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo, sacctmgr or squeue here
    assert backends.slurm_limits(SlurmSettings(partition="gpu")) == Limits("gpu")


def test_slurm_limits_read_each_command_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = tmp_path / "calls"
    for name, out in [("sinfo", LAB_SINFO), ("sacctmgr", ""), ("squeue", "5_1\n")]:
        script = tmp_path / name
        script.write_text(f"#!/bin/sh\necho {name} \"$@\" >> {calls}\nprintf '{out}'\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert backends.slurm_limits(SlurmSettings(partition="")) == Limits("gpu", gpus=2, pending=1, cpus=4)
    assert [line.split()[0] for line in calls.read_text().splitlines()] == [
        "sinfo",
        "sacctmgr",
        "sacctmgr",
        "squeue",
    ]
    assert "-p gpu" in calls.read_text().splitlines()[-1]


def test_read_results_prefers_the_runs_of_the_executor_asked_for(tmp_path: Path) -> None:
    sweep = layout.SweepDir(tmp_path / "s")
    sweep.root.mkdir()
    subs = [{"executor": "local", "tasks": [["a"]]}, {"executor": "slurm", "tasks": [["b"]]}]
    layout.write_json(sweep.manifest, {"submissions": subs})
    for run_id, startup in [("a", 5.0), ("b", 20.0)]:
        sweep.run_dir(run_id).mkdir(parents=True)
        sweep.result(run_id).write_text(json.dumps(result(startup_seconds=startup)))
    assert [r["startup_seconds"] for r in measured.read_results(tmp_path, "tensorflow", "slurm")] == [20.0]
    assert [r["startup_seconds"] for r in measured.read_results(tmp_path, "tensorflow", "local")] == [5.0]
    # none of this executor's yet: every executor's
    assert len(measured.read_results(tmp_path, "tensorflow", "fake")) == 2


def test_without_sinfo_the_other_commands_are_not_waited_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    (tmp_path / "sinfo").write_text("#!/bin/sh\nexit 1\n")
    for name in ("sacctmgr", "squeue"):
        (tmp_path / name).write_text(f"#!/bin/sh\necho {name} >> {calls}\n")
    for name in ("sinfo", "sacctmgr", "squeue"):
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert backends.slurm_limits(SlurmSettings(partition="gpu")) == Limits("gpu")
    assert not calls.exists()
